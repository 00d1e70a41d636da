//! [`Method`]: which method of which service a call is for.

use crate::schema::Schema;
use std::fmt;

/// Identifies a method: its service's name and its own name, as declared in the `.tidl` file,
/// and, for generated code, the shape of its messages on the wire. Two methods are equal when
/// their names are.
#[derive(Clone, Copy, Debug)]
pub struct Method {
    service: &'static str,
    name: &'static str,
    schema: Option<&'static Schema>,
}

impl Method {
    /// The method `name` of `service`.
    pub const fn new(service: &'static str, name: &'static str) -> Method {
        Method { service, name, schema: None }
    }

    /// The method with the wire shape the compiler wrote for it: the client then tells the
    /// server the shape before its first call, and the server refuses calls from a client whose
    /// schema it cannot read (`FailedPrecondition`) instead of misreading them.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_schema(self, schema: &'static Schema) -> Method {
        Method { schema: Some(schema), ..self }
    }

    /// The wire shape, if the method has one.
    #[doc(hidden)]
    pub fn schema(&self) -> Option<&'static Schema> {
        self.schema
    }

    /// The service's name.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Method) -> bool {
        self.service == other.service && self.name == other.name
    }
}

impl Eq for Method {}

impl std::hash::Hash for Method {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.service.hash(state);
        self.name.hash(state);
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.service, self.name)
    }
}
