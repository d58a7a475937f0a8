//! Local control plane and shared test fixtures.
