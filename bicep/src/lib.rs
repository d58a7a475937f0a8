//! Native Bicep → ARM JSON compiler.
