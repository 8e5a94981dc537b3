# The stack berth's README applies with Terraform (tests/terraform.rs applies, plans,
# changes and destroys it): an ECS cluster, a task definition, an ELBv2 load balancer,
# target group and listener, and a load-balanced service. Everything but the endpoint
# is what you would write for AWS.
#
#   terraform init && terraform apply \
#     -var endpoint=http://127.0.0.1:9650 -var access_key=... -var secret_key=...
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}
variable "endpoint" { type = string }
variable "access_key" { type = string }
variable "secret_key" {
  type      = string
  sensitive = true
}
variable "listener_port" {
  type    = number
  default = 8088
}
# What the page says: change it and apply, and the service redeploys.
variable "tag" {
  type    = string
  default = "one"
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = var.access_key
  secret_key                  = var.secret_key
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {
    ecs   = var.endpoint
    elbv2 = var.endpoint
  }
}
resource "aws_ecs_cluster" "app" {
  name = "tf-app"
  setting {
    name  = "containerInsights"
    value = "disabled"
  }
  configuration {
    execute_command_configuration {
      logging = "DEFAULT"
    }
  }
}
resource "aws_ecs_task_definition" "web" {
  family                   = "tf-web"
  requires_compatibilities = ["EC2"]
  network_mode             = "bridge"
  container_definitions = jsonencode([{
    name         = "web"
    image        = "berth/busybox:latest"
    memory       = 16
    essential    = true
    stopTimeout  = 2
    command      = ["sh", "-c", "mkdir -p /www && echo ${var.tag} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    portMappings = [{ containerPort = 8080, hostPort = 0, protocol = "tcp" }]
  }])
}
resource "aws_lb" "front" {
  name               = "tf-front"
  load_balancer_type = "application"
  internal           = true
  subnets            = ["subnet-0000000000000001", "subnet-0000000000000002"]
  idle_timeout       = 30
}
resource "aws_lb_target_group" "web" {
  name                 = "tf-web"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "instance"
  vpc_id               = "vpc-00000000000000001"
  deregistration_delay = 2
  health_check {
    path                = "/"
    interval            = 5
    timeout             = 2
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}
resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.front.arn
  port              = var.listener_port
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}
resource "aws_ecs_service" "web" {
  name                  = "tf-web"
  cluster               = aws_ecs_cluster.app.id
  task_definition       = aws_ecs_task_definition.web.arn
  desired_count         = 2
  launch_type           = "EC2"
  wait_for_steady_state = true
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.web.arn
    container_name   = "web"
    container_port   = 8080
  }
  ordered_placement_strategy {
    type  = "spread"
    field = "instanceId"
  }
  depends_on = [aws_lb_listener.http]
}
