//! Rust names of what a `.tidl` file declares, through [`crate::names`], with the names that
//! cannot be used reported.

use super::Checker;
use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::names::{self, RustName};

impl<'a> Checker<'a> {
    /// The Rust name of a type or service, or `None` (reported) if it cannot have one.
    pub(super) fn type_name(&mut self, name: &ast::Ident) -> Option<String> {
        self.checked(name, names::type_name(&name.name))
    }

    /// The Rust name of a field, method or module, or `None` (reported) if it cannot have one.
    pub(super) fn value_name(&mut self, name: &ast::Ident) -> Option<String> {
        self.checked(name, names::value_name(&name.name))
    }

    /// The Rust name of a method, or `None` (reported) if it cannot have one.
    pub(super) fn method_name(&mut self, name: &ast::Ident) -> Option<String> {
        self.checked(name, names::method_name(&name.name))
    }

    pub(super) fn module_name(&mut self, segment: &ast::Ident) -> Option<String> {
        self.value_name(segment)
    }

    fn checked(&mut self, name: &ast::Ident, rust: RustName) -> Option<String> {
        match rust {
            RustName::Ok(rust) => Some(rust),
            RustName::Reserved => {
                self.reserved(name);
                None
            }
            RustName::StartsWithDigit(rust) => {
                self.starts_with_digit(name, &rust);
                None
            }
        }
    }

    fn starts_with_digit(&mut self, name: &ast::Ident, rust: &str) {
        self.error(
            Diagnostic::error(name.span, format!("`{}` cannot be used as a name", name.name))
                .label(format!("would be `{rust}` in Rust, which starts with a digit"))
                .help("names must start with a letter once leading underscores are dropped"),
        );
    }

    fn reserved(&mut self, name: &ast::Ident) {
        self.error(
            Diagnostic::error(name.span, format!("`{}` cannot be used as a name", name.name))
                .label("reserved in Rust")
                .help("`self`, `Self`, `super`, `crate` and `_` cannot name anything in generated Rust code"),
        );
    }
}
