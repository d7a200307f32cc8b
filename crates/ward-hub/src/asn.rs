//! ASN lookups in a MaxMind-format database (GeoLite2-ASN or compatible), optional.

use std::net::IpAddr;

#[derive(serde::Deserialize)]
struct AsnRecord {
    autonomous_system_number: Option<u32>,
}

/// The autonomous system number of `ip`, if the database knows it.
pub fn lookup(reader: &maxminddb::Reader<Vec<u8>>, ip: IpAddr) -> Option<u32> {
    let record: Option<AsnRecord> = reader.lookup(ip).ok()?;
    record?.autonomous_system_number
}
