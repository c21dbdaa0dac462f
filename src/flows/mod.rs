//! Call flows: the menus and words of the line as data (`call_flows/*.toml`), their
//! validation, and the pure engine that plays them.

pub mod diagram;
pub mod engine;
pub mod journey;
pub mod load;
pub mod model;
pub mod speech;
pub mod template;

pub use engine::{Answer, Answers, Context, Input, QueueExit, QueueWait, Turn, Wait};
pub use load::{builtin, load_dir, FlowError, Problem};
pub use model::{Flow, NodeId, NodeKind};

#[cfg(test)]
mod tests;
