use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use berth_api::{ContainerStats, LogLine};
use berth_core::ecs::{Context, EcsResult};
use berth_core::{ArnScope, Command, EcsError, ErrorCode, PrivilegePolicy, State};
use berth_store::{Store, StoreError};

use crate::listener_serving::ListenerServing;
use crate::scheduler_loop::LoopName;
use crate::{now, RandomIds};

/// Where the API reads what only the agent that runs a task knows: its containers'
/// output (`berth logs`) and their live figures (`berth top`).
#[async_trait]
pub trait TaskAgents: Send + Sync {
    async fn task_logs(
        &self,
        task_id: &str,
        container_name: Option<&str>,
        since: Option<f64>,
        tail: Option<u64>,
    ) -> Result<Vec<LogLine>, String>;

    /// The figures of the task's running containers (none when it is not placed or
    /// none of its containers runs).
    async fn task_stats(&self, task_id: &str) -> Result<Vec<ContainerStats>, String>;
}

/// The control plane's shared parts: the store, who this deployment of berth is, and
/// what its operator lets API callers make the host do.
pub struct ControlPlane {
    pub store: Arc<Store>,
    pub account_id: String,
    pub default_region: String,
    pub privilege_policy: PrivilegePolicy,
    /// What the balancer beside this control plane says of each listener's socket.
    pub listener_serving: ListenerServing,
    task_agents: RwLock<Option<Arc<dyn TaskAgents>>>,
    scheduler_panics: AtomicU64,
    load_balancer_panics: AtomicU64,
}

impl ControlPlane {
    pub fn new(
        store: Arc<Store>,
        account_id: String,
        default_region: String,
        privilege_policy: PrivilegePolicy,
    ) -> Self {
        ControlPlane {
            store,
            account_id,
            default_region,
            privilege_policy,
            listener_serving: ListenerServing::default(),
            task_agents: RwLock::new(None),
            scheduler_panics: AtomicU64::new(0),
            load_balancer_panics: AtomicU64::new(0),
        }
    }

    fn panics_of(&self, name: LoopName) -> &AtomicU64 {
        match name {
            LoopName::Scheduler => &self.scheduler_panics,
            LoopName::LoadBalancerConfig => &self.load_balancer_panics,
        }
    }

    /// How often a round of this loop panicked since the start (each was logged and
    /// the loop went on).
    pub fn loop_panics(&self, name: LoopName) -> u64 {
        self.panics_of(name).load(Ordering::Relaxed)
    }

    /// Counts a panic of one round of a loop; returns the count so far.
    pub(crate) fn loop_panicked(&self, name: LoopName) -> u64 {
        self.panics_of(name).fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A control plane over an empty in-memory store, account 000000000000 in
    /// us-east-1, allowing every privilege (as `berth dev` on loopback): for tests.
    #[cfg(test)]
    pub(crate) fn in_memory() -> Self {
        let store = Store::open(Box::new(berth_store::MemoryBackend::default()))
            .expect("an in-memory store opens");
        ControlPlane::new(
            Arc::new(store),
            "000000000000".to_string(),
            "us-east-1".to_string(),
            PrivilegePolicy::allow_all(),
        )
    }

    pub fn set_task_agents(&self, agents: Arc<dyn TaskAgents>) {
        *self.task_agents.write().unwrap_or_else(|e| e.into_inner()) = Some(agents);
    }

    pub fn task_agents(&self) -> Option<Arc<dyn TaskAgents>> {
        self.task_agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn scope(&self, region: &str) -> ArnScope {
        ArnScope {
            region: region.to_string(),
            account_id: self.account_id.clone(),
        }
    }

    /// Runs `decide` in a store transaction (`Store::transact_async`: a read answers on
    /// this thread, a write is made durable on a blocking thread) with a `Context` of
    /// its own: this control plane's scope in `region`, its privilege policy, the
    /// clock and random ids. Every decision the control plane makes goes through here.
    pub async fn transact<R, E>(
        &self,
        region: &str,
        mut decide: impl FnMut(&State, &mut Context) -> Result<(Vec<Command>, R), E> + Send + 'static,
    ) -> Result<Result<R, E>, StoreError>
    where
        R: Send + 'static,
        E: Send + 'static,
    {
        let scope = self.scope(region);
        let policy = self.privilege_policy.clone();
        self.store
            .transact_async(move |state| {
                let mut ids = RandomIds;
                let mut ctx = Context {
                    now: now(),
                    scope: &scope,
                    ids: &mut ids,
                    policy: &policy,
                };
                decide(state, &mut ctx)
            })
            .await
    }

    /// Runs one ECS action atomically against the store (its cluster checked first).
    pub async fn run<Req, Resp>(
        &self,
        region: &str,
        request: Req,
        action: fn(&State, Req, &mut Context) -> EcsResult<Resp>,
    ) -> Result<Resp, EcsError>
    where
        Req: berth_core::ecs::EcsRequest + Clone + Send + 'static,
        Resp: Send + 'static,
    {
        let outcome = self
            .transact(region, move |state, ctx| {
                berth_core::ecs::run_action(state, request.clone(), ctx, action)
                    .map(|o| (o.commands, o.response))
            })
            .await;
        match outcome {
            Ok(result) => result,
            Err(store_error) => {
                tracing::error!(error = %store_error, "store write failed");
                Err(EcsError::new(
                    ErrorCode::ServerException,
                    "the store could not save the change; nothing was changed",
                ))
            }
        }
    }
}
