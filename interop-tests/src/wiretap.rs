//! placeholder: a frame-decoding TCP/unix proxy.
