//! The words of a warning. One [`Message`] per notification, rendered from what the recipient
//! jurisdiction may see ([`JurisdictionCampaignView`]): what hit it, when, from where, how many
//! other jurisdictions saw the same actor (a count), the TLP label, and what to do now.

use std::collections::BTreeSet;

use crate::config::HubConfig;
use crate::model::{fmt_ms, Jurisdiction, JurisdictionCampaignView};

/// Addresses listed in a message at most; the JSON carries the same cap.
pub(crate) const MAX_LISTED: usize = 20;

/// The "Details:" line pointing at the campaign's page, when the hub knows its public URL.
pub(crate) fn details_link(config: &HubConfig, campaign_id: i64) -> String {
    if config.public_url.is_empty() {
        String::new()
    } else {
        format!("\nDetails: {}/campaigns/{campaign_id}\n", config.public_url.trim_end_matches('/'))
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub json: serde_json::Value,
    /// CEF severity 0–10.
    pub severity: u8,
    pub event_kind: String,
    pub campaign_id: i64,
    pub remote: Option<String>,
    pub local: Option<String>,
    pub other_jurisdictions: i64,
}

impl Message {
    /// Marks a message to a drill jurisdiction ([`crate::drill`]) so nobody mistakes it for a
    /// real attack: the subject starts `[DRILL] `, the text with [`crate::drill::BANNER`], and
    /// the JSON carries `"drill": true` (its `text` the marked text). Marking twice changes
    /// nothing more.
    pub fn mark_drill(mut self) -> Message {
        if self.json.get("drill").and_then(|d| d.as_bool()) == Some(true) {
            return self;
        }
        self.subject = format!("{}{}", crate::drill::SUBJECT_PREFIX, self.subject);
        self.text = format!("{}\n\n{}", crate::drill::BANNER, self.text);
        if let Some(obj) = self.json.as_object_mut() {
            obj.insert("drill".into(), serde_json::Value::Bool(true));
            if obj.contains_key("text") {
                obj.insert("text".into(), serde_json::Value::String(self.text.clone()));
            }
        }
        self
    }

    /// [`Message::mark_drill`] when `drill`, else the message unchanged.
    pub fn mark_drill_if(self, drill: bool) -> Message {
        if drill {
            self.mark_drill()
        } else {
            self
        }
    }
}

/// `notification_id` goes into the JSON as `id`: a delivery retried after a crash carries the
/// same id, so receivers can drop the duplicate.
pub fn render(config: &HubConfig, jurisdiction: &Jurisdiction, view: &JurisdictionCampaignView, event_kind: &str, notification_id: i64) -> Message {
    let notify = &config.notify;
    let tlp = notify.tlp.as_str();
    let remotes: BTreeSet<&str> = view.sightings.iter().map(|s| s.remote_ip.as_str()).collect();
    let locals: BTreeSet<&str> = view.sightings.iter().filter_map(|s| s.local_ip.as_deref()).collect();
    let signatures: BTreeSet<&str> = view.sightings.iter().filter_map(|s| s.signature.as_deref()).collect();
    let count: i64 = view.sightings.iter().map(|s| s.count).sum();
    let first = view.sightings.iter().map(|s| s.first_ms).min().unwrap_or(view.first_ms);
    let last = view.sightings.iter().map(|s| s.last_ms).max().unwrap_or(view.last_ms);
    let remote_list: Vec<&str> = remotes.iter().copied().take(MAX_LISTED).collect();
    let local_list: Vec<&str> = locals.iter().copied().take(MAX_LISTED).collect();
    let block: Vec<&str> = view.block.iter().map(String::as_str).take(MAX_LISTED).collect();
    let headline = match event_kind {
        "targeted" => "an attacker seen across jurisdictions has targeted you",
        "escalated" => "a campaign that targeted you has escalated",
        crate::ack::KIND_UNACKED => "a warning to your office has not been acknowledged: an attacker seen across jurisdictions has targeted you",
        _ => "a campaign that targeted you has grown",
    };
    let subject = format!(
        "[{tlp}] {}: {headline} ({} other jurisdictions)",
        jurisdiction.name, view.other_jurisdictions
    );
    let others = match view.other_jurisdictions {
        1 => "1 other jurisdiction".to_string(),
        n => format!("{n} other jurisdictions"),
    };
    let what = if signatures.is_empty() {
        "suspicious traffic".to_string()
    } else {
        signatures.iter().take(5).copied().collect::<Vec<_>>().join("; ")
    };
    let link = details_link(config, view.campaign_id);
    let text = format!(
        "{tlp}\n\n{hub} warning for {name}: {headline}.\n\n\
         What was seen at your jurisdiction: {what}\n\
         From: {from}\n\
         Against your hosts: {to}\n\
         When: {count} events between {first} and {last} (UTC)\n\
         The same actor was seen at {others}.\n\n\
         What to do now:\n\
         1. Block these addresses at your firewall: {block}\n\
         2. Check these hosts of yours for signs of compromise: {to}\n\
         3. Call {phone} if you see more activity from these addresses or need help.\n\
         {link}\nCampaign: {campaign} (#{id}). Share according to {tlp}.\n",
        hub = notify.hub_name,
        name = jurisdiction.name,
        from = if remote_list.is_empty() { "(see campaign)".into() } else { remote_list.join(", ") },
        to = if local_list.is_empty() { "(none recorded)".into() } else { local_list.join(", ") },
        first = fmt_ms(first),
        last = fmt_ms(last),
        block = block.join(", "),
        phone = notify.phone,
        campaign = view.name,
        id = view.campaign_id,
    );
    let json = serde_json::json!({
        "id": notification_id,
        "type": format!("ward.campaign.{event_kind}"),
        "tlp": tlp,
        "campaign": { "id": view.campaign_id, "name": view.name, "status": view.status },
        "jurisdiction": { "id": jurisdiction.id, "name": jurisdiction.name },
        "seen": {
            "signatures": signatures.iter().take(MAX_LISTED).collect::<Vec<_>>(),
            "remote_addresses": remote_list,
            "local_hosts": local_list,
            "events": count,
            "first": fmt_ms(first),
            "last": fmt_ms(last),
        },
        "other_jurisdictions": view.other_jurisdictions,
        "actions": {
            "block": block,
            "check_hosts": local_list,
            "call": notify.phone,
        },
        "text": text,
    });
    let severity = match event_kind {
        "escalated" => 9,
        "targeted" | crate::ack::KIND_UNACKED => 8,
        _ => 6,
    };
    Message {
        subject,
        text,
        json,
        severity,
        event_kind: event_kind.to_string(),
        campaign_id: view.campaign_id,
        remote: remote_list.first().map(|s| s.to_string()),
        local: local_list.first().map(|s| s.to_string()),
        other_jurisdictions: view.other_jurisdictions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_message_says_so_everywhere_once() {
        let msg = Message {
            subject: "[TLP:AMBER] Franklin County: targeted".into(),
            text: "TLP:AMBER\n\nwarning".into(),
            json: serde_json::json!({ "id": 7, "text": "TLP:AMBER\n\nwarning" }),
            severity: 8,
            event_kind: "targeted".into(),
            campaign_id: 1,
            remote: None,
            local: None,
            other_jurisdictions: 2,
        };
        let plain = msg.clone().mark_drill_if(false);
        assert_eq!(plain.subject, msg.subject);
        assert!(plain.json.get("drill").is_none());
        let marked = msg.mark_drill().mark_drill();
        assert_eq!(marked.subject, "[DRILL] [TLP:AMBER] Franklin County: targeted");
        assert!(marked.text.starts_with(crate::drill::BANNER), "{}", marked.text);
        assert_eq!(marked.text.matches("DRILL").count(), 1, "marked once: {}", marked.text);
        assert_eq!(marked.json["drill"], true);
        assert_eq!(marked.json["text"], marked.text.as_str());
        let line = crate::notify::syslog::format_line(&marked, chrono::Utc::now());
        assert!(line.contains("[DRILL]"), "{line}");
    }
}
