//! Developer tools: made-up data for benchmarks. Nothing here runs in `serve`.

pub mod seed;
