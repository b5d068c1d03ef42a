//! OCI archives: an OCI image layout (`oci-layout`, `index.json`, `blobs/`)
//! in a tar stream.

pub mod output;
pub mod parts;
pub mod reader;
pub mod writer;
