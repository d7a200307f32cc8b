//! Medium 5: multi-member gzip bodies and trailing garbage are read whole or refused, never acknowledged in part.

use axum::http::StatusCode;

use crate::common::*;

fn line(n: usize) -> String {
    format!("{{\"event_type\":\"dns\",\"dns\":{{\"rrname\":\"member{n}.example\"}}}}\n")
}

crate::on_each_backend! {
    #[tokio::test]
    async fn every_gzip_member_is_stored() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let (sid, cred) = h.sensor(j).await;
        // `cat a.gz b.gz c.gz` is one valid gzip file (RFC 1952): three members, three lines.
        let body: Vec<u8> = [gzip(line(1).as_bytes()), gzip(line(2).as_bytes()), gzip(line(3).as_bytes())].concat();
        for gz_header in [true, false] {
            let seq = if gz_header { 1 } else { 2 };
            let r = h.post_events((sid, &cred), seq, body.clone(), gz_header).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert_eq!(r.json()["accepted"], 3, "every member is read: {}", r.text());
        }
        let names: Vec<String> = h.db(|s| s.events(Some(j), None, 10)).unwrap().iter().map(|e| e.body["dns"]["rrname"].as_str().unwrap().to_string()).collect();
        for n in 1..=3 {
            assert_eq!(names.iter().filter(|x| **x == format!("member{n}.example")).count(), 2, "{names:?}");
        }
    }

    #[tokio::test]
    async fn bytes_after_the_last_member_refuse_the_batch() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let (sid, cred) = h.sensor(j).await;
        let good = gzip(format!("{}{}", line(1), line(2)).as_bytes());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("trailing text", [good.clone(), b"{\"event_type\":\"dns\"}\n".to_vec()].concat()),
            ("trailing zeros", [good.clone(), vec![0u8; 16]].concat()),
            ("a truncated second member", [good.clone(), gzip(line(3).as_bytes())[..12].to_vec()].concat()),
            ("a damaged second member", {
                let mut second = gzip(line(3).as_bytes());
                let n = second.len();
                second[n - 6] ^= 0xff; // the CRC
                [good.clone(), second].concat()
            }),
        ];
        for (what, body) in cases {
            let r = h.post_events((sid, &cred), 7, body, true).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
            assert!(r.json()["error"].as_str().unwrap().contains("gzip"), "{what}: {}", r.text());
            assert!(h.db(|s| s.events(Some(j), None, 10)).unwrap().is_empty(), "{what}: nothing stored");
        }
        // The refused key was not consumed: the same key with the good body is stored whole.
        let r = h.post_events((sid, &cred), 7, good, true).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["duplicate"], false);
        assert_eq!(r.json()["accepted"], 2);
    }
}
