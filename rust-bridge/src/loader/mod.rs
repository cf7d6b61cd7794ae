//! placeholder: the capability loader.
