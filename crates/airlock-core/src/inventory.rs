//! Appliance inventories: the signed list of blobs a disconnected appliance holds.
//!
//! `airlockd inventory export` writes one as a DSSE envelope (payload type
//! [`PAYLOAD_TYPE`]) signed by the appliance key; `airlock pack --since FILE --appliance-key PUB`
//! verifies it and leaves out every blob it lists, producing a differential bundle.

use serde::{Deserialize, Serialize};

use crate::Digest;

/// DSSE payload type of inventories.
pub const PAYLOAD_TYPE: &str = "application/vnd.airlock.inventory.v1+json";
pub const TYPE: &str = "airlock-inventory/v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(rename = "_type")]
    pub type_: String,
    /// Key id of the appliance key that signs it.
    pub appliance: String,
    pub created: String,
    pub blobs: Vec<InventoryBlob>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryBlob {
    pub digest: Digest,
    pub size: u64,
}
