//! The screening stages, in the order data flows through them:
//! [`language`] → [`redaction`] → [`risk`] → [`routing`].
//! Each takes what the previous ones produced and adds its part of the record.

pub mod language;
pub mod redaction;
pub mod risk;
pub mod routing;
