//! vigil host
