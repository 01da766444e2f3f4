//! The C ABI (`include/gopherdiscovery.h`). Filled in by the C ABI work.
