//! Port lists: the default (nmap's top-1000 TCP ports plus every port a ward check exists for),
//! nmap's top 1000 alone, ward's check ports alone, all 65,535, a user list like
//! `22,80,443,8000-8100`, or any mix of them (`top1000,6379,27017`).
//!
//! Invariants: the result is sorted, without duplicates, never contains port 0.

/// nmap's top-1000 TCP ports (`nmap --top-ports 1000`, nmap 7.93 services file), as nmap prints
/// them in `-oG` output.
pub const NMAP_TOP_1000_TCP: &str = "
1,3-4,6-7,9,13,17,19-26,30,32-33,37,42-43,49,53,70,79-85,88-90,99-100,106,109-111,113,119,125,135,139,143-144,146,161,163,179,199,211-212,222,254-256,259,264,280,301,306,311,340,366,389,406-407,416-417,425,427,443-445,458,464-465,481,497,500,512-515,524,541,543-545,548,554-555,563,587,593,616-617,625,631,636,646,648,666-668,683,687,691,700,705,711,714,720,722,726,749,765,777,783,787,800-801,808,843,873,880,888,898,900-903,911-912,981,987,990,992-993,995,999-1002,1007,1009-1011,1021-1100,1102,1104-1108,1110-1114,1117,1119,1121-1124,1126,1130-1132,1137-1138,1141,1145,1147-1149,1151-1152,1154,1163-1166,1169,1174-1175,1183,1185-1187,1192,1198-1199,1201,1213,1216-1218,1233-1234,1236,1244,1247-1248,1259,1271-1272,1277,1287,1296,1300-1301,1309-1311,1322,1328,1334,1352,1417,1433-1434,1443,1455,1461,1494,1500-1501,1503,1521,1524,1533,1556,1580,1583,1594,1600,1641,1658,1666,1687-1688,1700,1717-1721,1723,1755,1761,1782-1783,1801,1805,1812,1839-1840,1862-1864,1875,1900,1914,1935,1947,1971-1972,1974,1984,1998-2010,2013,2020-2022,2030,2033-2035,2038,2040-2043,2045-2049,2065,2068,2099-2100,2103,2105-2107,2111,2119,2121,2126,2135,2144,2160-2161,2170,2179,2190-2191,2196,2200,2222,2251,2260,2288,2301,2323,2366,2381-2383,2393-2394,2399,2401,2492,2500,2522,2525,2557,2601-2602,2604-2605,2607-2608,2638,2701-2702,2710,2717-2718,2725,2800,2809,2811,2869,2875,2909-2910,2920,2967-2968,2998,3000-3001,3003,3005-3007,3011,3013,3017,3030-3031,3052,3071,3077,3128,3168,3211,3221,3260-3261,3268-3269,3283,3300-3301,3306,3322-3325,3333,3351,3367,3369-3372,3389-3390,3404,3476,3493,3517,3527,3546,3551,3580,3659,3689-3690,3703,3737,3766,3784,3800-3801,3809,3814,3826-3828,3851,3869,3871,3878,3880,3889,3905,3914,3918,3920,3945,3971,3986,3995,3998,4000-4006,4045,4111,4125-4126,4129,4224,4242,4279,4321,4343,4443-4446,4449,4550,4567,4662,4848,4899-4900,4998,5000-5004,5009,5030,5033,5050-5051,5054,5060-5061,5080,5087,5100-5102,5120,5190,5200,5214,5221-5222,5225-5226,5269,5280,5298,5357,5405,5414,5431-5432,5440,5500,5510,5544,5550,5555,5560,5566,5631,5633,5666,5678-5679,5718,5730,5800-5802,5810-5811,5815,5822,5825,5850,5859,5862,5877,5900-5904,5906-5907,5910-5911,5915,5922,5925,5950,5952,5959-5963,5987-5989,5998-6007,6009,6025,6059,6100-6101,6106,6112,6123,6129,6156,6346,6389,6502,6510,6543,6547,6565-6567,6580,6646,6666-6669,6689,6692,6699,6779,6788-6789,6792,6839,6881,6901,6969,7000-7002,7004,7007,7019,7025,7070,7100,7103,7106,7200-7201,7402,7435,7443,7496,7512,7625,7627,7676,7741,7777-7778,7800,7911,7920-7921,7937-7938,7999-8002,8007-8011,8021-8022,8031,8042,8045,8080-8090,8093,8099-8100,8180-8181,8192-8194,8200,8222,8254,8290-8292,8300,8333,8383,8400,8402,8443,8500,8600,8649,8651-8652,8654,8701,8800,8873,8888,8899,8994,9000-9003,9009-9011,9040,9050,9071,9080-9081,9090-9091,9099-9103,9110-9111,9200,9207,9220,9290,9415,9418,9485,9500,9502-9503,9535,9575,9593-9595,9618,9666,9876-9878,9898,9900,9917,9929,9943-9944,9968,9998-10004,10009-10010,10012,10024-10025,10082,10180,10215,10243,10566,10616-10617,10621,10626,10628-10629,10778,11110-11111,11967,12000,12174,12265,12345,13456,13722,13782-13783,14000,14238,14441-14442,15000,15002-15004,15660,15742,16000-16001,16012,16016,16018,16080,16113,16992-16993,17877,17988,18040,18101,18988,19101,19283,19315,19350,19780,19801,19842,20000,20005,20031,20221-20222,20828,21571,22939,23502,24444,24800,25734-25735,26214,27000,27352-27353,27355-27356,27715,28201,30000,30718,30951,31038,31337,32768-32785,33354,33899,34571-34573,35500,38292,40193,40911,41511,42510,44176,44442-44443,44501,45100,48080,49152-49161,49163,49165,49167,49175-49176,49400,49999-50003,50006,50300,50389,50500,50636,50800,51103,51493,52673,52822,52848,52869,54045,54328,55055-55056,55555,55600,56737-56738,57294,57797,58080,60020,60443,61532,61900,62078,63331,64623,64680,65000,65129,65389
";

/// Every TCP port a ward check or identification exists for, and the admin ports of the
/// appliances offices expose. nmap's top 1000 leaves several out (Redis 6379, MongoDB 27017,
/// memcached 11211, WinRM 5985/5986, Docker 2375/2376…), so a default scan would miss a
/// critical "answers without a password" finding that `--ports 6379` finds.
pub const CHECK_PORTS: &str = "
21,22,23,25,53,80,110,111,135,139,143,389,443,445,465,587,636,993,995,1433,1521,2121,2222,2323,
3306,3389,4443,5432,5900-5909,6379,8000,8008,8080,8081,8443,8888,9200,9201,11211,27017,27018,
902,1443,2049,2375,2376,4433,5601,5984,5985,5986,6443,7001,8009,8088,8834,9000,9090,9443,10000,10443,
2379,5000,5601,6000,8161,8983,9042,9300,15672,50000
";

/// Printer raw-print ports (HP JetDirect 9100 and the 9101-9107 siblings): a connect is fine but
/// any payload would be printed, so no probe ever writes to them.
pub const PRINTER_PORTS: std::ops::RangeInclusive<u16> = 9100..=9107;

/// Whether a port is a raw-print port that must never receive a payload.
pub fn is_printer_port(port: u16) -> bool {
    PRINTER_PORTS.contains(&port)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortListError {
    #[error("port list item {0:?} is not a port (1-65535), a range like 8000-8100 or a named list (default, top1000, checks, all); e.g. --ports top1000,6379,27017")]
    Invalid(String),
    #[error("port list is empty; use default, top1000, checks, all or a list such as 22,80,443")]
    Empty,
}

/// Parse a comma-separated mix of named lists (`default`, `top1000`, `checks`, `all`), ports
/// and ranges, e.g. `top1000,6379,27017` or `checks,8000-8100`.
pub fn parse_ports(text: &str) -> Result<Vec<u16>, PortListError> {
    let mut ports = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.to_ascii_lowercase().as_str() {
            "default" => {
                ports.extend(parse_list(NMAP_TOP_1000_TCP)?);
                ports.extend(parse_list(CHECK_PORTS)?);
            }
            "top1000" | "top-1000" => ports.extend(parse_list(NMAP_TOP_1000_TCP)?),
            "checks" => ports.extend(parse_list(CHECK_PORTS)?),
            "all" | "-" => return Ok((1..=65535).collect()),
            _ => ports.extend(parse_list(item)?),
        }
    }
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        return Err(PortListError::Empty);
    }
    Ok(ports)
}

fn parse_list(text: &str) -> Result<Vec<u16>, PortListError> {
    let mut ports = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || PortListError::Invalid(item.to_string());
        let one = |s: &str| -> Result<u16, PortListError> {
            match s.trim().parse::<u16>() {
                Ok(0) | Err(_) => Err(bad()),
                Ok(p) => Ok(p),
            }
        };
        match item.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (one(lo)?, one(hi)?);
                if lo > hi {
                    return Err(bad());
                }
                ports.extend(lo..=hi);
            }
            None => ports.push(one(item)?),
        }
    }
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        return Err(PortListError::Empty);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top1000_has_exactly_1000_ports_including_the_usual_ones() {
        let ports = parse_ports("top1000").unwrap();
        assert_eq!(ports.len(), 1000);
        for p in [21, 22, 23, 25, 80, 135, 139, 443, 445, 3306, 3389, 5900, 8080] {
            assert!(ports.binary_search(&p).is_ok(), "{p} missing");
        }
    }

    #[test]
    fn the_default_adds_every_check_port_to_the_top_1000() {
        let default = parse_ports("default").unwrap();
        let top = parse_ports("top1000").unwrap();
        for p in [6379, 27017, 11211, 5985, 2375, 10443] {
            assert!(top.binary_search(&p).is_err(), "{p} is in nmap's top 1000 after all");
            assert!(default.binary_search(&p).is_ok(), "{p} missing from the default");
        }
        assert!(top.iter().all(|p| default.binary_search(p).is_ok()));
        assert!(default.len() > 1000 && default.len() < 1100, "{}", default.len());
        // Every port a service name is known for is scanned by default.
        for p in 1..=65535u16 {
            let name = crate::probe::port_hint(p);
            if name != "unknown" && !is_printer_port(p) {
                assert!(default.binary_search(&p).is_ok(), "{p} ({name}) has an identification but is not in the default list");
            }
        }
    }

    #[test]
    fn named_lists_mix_with_ports() {
        let mixed = parse_ports("top1000,6379,27017").unwrap();
        assert_eq!(mixed.len(), 1002);
        assert_eq!(parse_ports("checks,6379").unwrap(), parse_ports("checks").unwrap());
        assert_eq!(parse_ports("22,all").unwrap().len(), 65535);
        assert_eq!(parse_ports("TOP1000").unwrap().len(), 1000);
        assert!(matches!(parse_ports("top1000,nope"), Err(PortListError::Invalid(s)) if s == "nope"));
    }

    #[test]
    fn lists_and_ranges() {
        assert_eq!(parse_ports("443, 22,80-82,22").unwrap(), vec![22, 80, 81, 82, 443]);
        assert_eq!(parse_ports("all").unwrap().len(), 65535);
        assert_eq!(parse_ports("1-65535").unwrap().len(), 65535);
        assert_eq!(parse_ports("0"), Err(PortListError::Invalid("0".into())));
        assert_eq!(parse_ports("90-80"), Err(PortListError::Invalid("90-80".into())));
        assert_eq!(parse_ports("65536"), Err(PortListError::Invalid("65536".into())));
        assert_eq!(parse_ports(","), Err(PortListError::Empty));
        assert!(is_printer_port(9100) && is_printer_port(9107) && !is_printer_port(9108));
    }
}
