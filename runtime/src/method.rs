//! [`Method`]: which method of which service a call is for.

use std::fmt;

/// Identifies a method: its service's name and its own name, as declared in the `.tidl` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Method {
    service: &'static str,
    name: &'static str,
}

impl Method {
    /// The method `name` of `service`.
    pub const fn new(service: &'static str, name: &'static str) -> Method {
        Method { service, name }
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

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.service, self.name)
    }
}
