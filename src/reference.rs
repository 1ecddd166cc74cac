//! The naive reference model. PLACEHOLDER: being written.
