//! The ELBv2 wire (awsQuery, botocore's `elbv2/2015-12-01` model): form-encoded
//! requests decoded into typed requests, typed results written as XML.
//!
//! Every type here is a compatibility promise with the `aws elbv2` CLI and boto3,
//! like the ECS types beside it; names follow ELBv2's members.

mod form;
mod requests;
mod responses;
mod xml;

pub use form::{Form, FormError, FormView};
pub use requests::*;
pub use responses::*;
pub use xml::{error_document, escape, iso8601, response_document, QueryResult, XmlWriter};

/// The `Version` every ELBv2 request carries.
pub const ELBV2_VERSION: &str = "2015-12-01";
/// The namespace of every ELBv2 response document.
pub const ELBV2_XML_NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
/// The content type of awsQuery requests (parameters may follow).
pub const QUERY_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// The content type of awsQuery responses.
pub const XML_CONTENT_TYPE: &str = "text/xml";
