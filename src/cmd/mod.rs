//! The commands. Each returns the process exit code: 0 ok, 1 ran and found problems, 2 usage or
//! operational error (returned as `Err`).

pub mod check;
pub mod observe;
pub mod replay;
pub mod run;
pub mod suggest;
pub mod test;
