//! Plain PEM: the common files only, for any gateway not listed.

use super::Gateway;

pub struct Pem;

impl Gateway for Pem {
    about!("pem", "Plain PEM");
}
