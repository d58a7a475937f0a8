//! Azure Resource Manager simulator.

pub mod template;
