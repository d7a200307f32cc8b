//! Jurisdictions, sensors, contacts, users and sessions on PostgreSQL (the registry), the
//! port of the SQLite store's, with its validation. Constraints decide races between replicas:
//! one state per state code (a partial unique index), one use per enrollment token (the token
//! row is locked before it is used).

use ::postgres::error::SqlState;
use ::postgres::Row;

use super::{collect, jurisdiction_exists, pg_text, row_contact, PgStore, TxError};
use crate::error::StoreError;
use crate::model::*;
use crate::store::StoreResult;

pub(super) const JURISDICTION_BY_ID: &str = "SELECT id, name, kind, state, parent_id, home_net, created_ms, drill FROM jurisdictions WHERE id = $1";

pub(super) const SENSOR_BY_ID: &str = "SELECT id, jurisdiction_id, name, created_ms, last_seen_ms, last_event_ms, events_total FROM sensors WHERE id = $1";

const USER_BY_ID: &str = "SELECT id, username, role, jurisdiction_id, created_ms FROM users WHERE id = $1";

const CONTACT_BY_ID: &str = "SELECT id, jurisdiction_id, channel, target, secret, created_ms, priority FROM contacts WHERE id = $1";

pub(super) fn row_jurisdiction(r: &Row) -> Result<Jurisdiction, ::postgres::Error> {
    let kind: String = r.try_get(2)?;
    Ok(Jurisdiction {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: JurisdictionKind::parse(&kind).unwrap_or(JurisdictionKind::City),
        state: r.try_get(3)?,
        parent_id: r.try_get(4)?,
        home_net: r.try_get(5)?,
        created_ms: r.try_get(6)?,
        drill: r.try_get(7)?,
    })
}

pub(super) fn row_sensor(r: &Row) -> Result<Sensor, ::postgres::Error> {
    Ok(Sensor {
        id: r.try_get(0)?,
        jurisdiction_id: r.try_get(1)?,
        name: r.try_get(2)?,
        created_ms: r.try_get(3)?,
        last_seen_ms: r.try_get(4)?,
        last_event_ms: r.try_get(5)?,
        events_total: r.try_get(6)?,
        health: None,
    })
}

fn row_user(r: &Row) -> Result<User, ::postgres::Error> {
    let role: String = r.try_get(2)?;
    Ok(User {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        jurisdiction_id: r.try_get(3)?,
        created_ms: r.try_get(4)?,
    })
}

pub(super) fn create_jurisdiction(store: &PgStore, new: &NewJurisdiction, now: Millis) -> StoreResult<Jurisdiction> {
    let name = new.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(StoreError::Invalid("jurisdiction name must be 1 to 200 characters".into()));
    }
    check_text("jurisdiction name", name, false).map_err(StoreError::Invalid)?;
    let state = new.state.as_ref().map(|s| s.trim().to_ascii_uppercase());
    if let Some(s) = &state {
        if s.len() != 2 || !s.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(StoreError::Invalid("state must be a two-letter code such as OH".into()));
        }
    }
    if new.kind != JurisdictionKind::State && state.is_none() {
        return Err(StoreError::Invalid("a county or city needs --state XX (the state it belongs to)".into()));
    }
    let home_net = new.home_net.clone().unwrap_or_default();
    crate::ingest::HomeNet::parse(&home_net).map_err(|e| StoreError::Invalid(format!("home_net: {e}")))?;
    store.write(|db| {
        let parent: Option<i64> = match (&state, new.kind) {
            (Some(s), JurisdictionKind::County | JurisdictionKind::City) => {
                db.query_opt("SELECT id FROM jurisdictions WHERE kind = 'state' AND state = $1", &[s])?.map(|r| r.try_get(0)).transpose()?
            }
            _ => None,
        };
        let inserted = db.query_one(
            "INSERT INTO jurisdictions (name, kind, state, parent_id, home_net, created_ms) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&pg_text(name), &new.kind.as_str(), &state, &parent, &pg_text(&home_net), &now],
        );
        let id: i64 = match inserted {
            Ok(r) => r.try_get(0)?,
            Err(e) => {
                let e = TxError::from(e);
                return Err(match e.constraint() {
                    Some("jurisdictions_one_per_state") => {
                        StoreError::Conflict(format!("state {} is already registered", state.as_deref().unwrap_or_default())).into()
                    }
                    Some("jurisdictions_name_key") => StoreError::Conflict(format!("jurisdiction {name:?} already exists")).into(),
                    _ => e,
                });
            }
        };
        if new.kind == JurisdictionKind::State {
            // Counties and cities registered before their state now belong to it.
            db.execute(
                "UPDATE jurisdictions SET parent_id = $1 WHERE state = $2 AND kind <> 'state' AND parent_id IS NULL",
                &[&id, &state],
            )?;
        }
        Ok(row_jurisdiction(&db.query_one(JURISDICTION_BY_ID, &[&id])?)?)
    })
}

pub(super) fn jurisdictions(store: &PgStore) -> StoreResult<Vec<Jurisdiction>> {
    store.read(|db| {
        let rows = db.query("SELECT id, name, kind, state, parent_id, home_net, created_ms, drill FROM jurisdictions ORDER BY name", &[])?;
        Ok(collect(rows, row_jurisdiction)?)
    })
}

pub(super) fn jurisdiction(store: &PgStore, id: i64) -> StoreResult<Option<Jurisdiction>> {
    store.read(|db| Ok(db.query_opt(JURISDICTION_BY_ID, &[&id])?.as_ref().map(row_jurisdiction).transpose()?))
}

pub(super) fn jurisdiction_children(store: &PgStore, parent_id: i64) -> StoreResult<Vec<Jurisdiction>> {
    store.read(|db| {
        let rows = db.query(
            "SELECT id, name, kind, state, parent_id, home_net, created_ms, drill FROM jurisdictions WHERE parent_id = $1 AND id <> $1 ORDER BY name",
            &[&parent_id],
        )?;
        Ok(collect(rows, row_jurisdiction)?)
    })
}

pub(super) fn jurisdiction_by_name(store: &PgStore, name: &str) -> StoreResult<Option<Jurisdiction>> {
    store.read(|db| {
        let row = db.query_opt(
            "SELECT id, name, kind, state, parent_id, home_net, created_ms, drill FROM jurisdictions WHERE name = $1",
            &[&pg_text(name)],
        )?;
        Ok(row.as_ref().map(row_jurisdiction).transpose()?)
    })
}

pub(super) fn create_enrollment_token(store: &PgStore, jurisdiction_id: i64, token_hash: &str, now: Millis, expires_ms: Millis) -> StoreResult<()> {
    store.write(|db| {
        jurisdiction_exists(db, jurisdiction_id)?;
        db.execute(
            "INSERT INTO enrollment_tokens (token_hash, jurisdiction_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
            &[&pg_text(token_hash), &jurisdiction_id, &now, &expires_ms],
        )?;
        Ok(())
    })
}

pub(super) fn enroll_sensor(store: &PgStore, token_hash: &str, name: &str, credential_hash: &str, now: Millis) -> StoreResult<Sensor> {
    check_text("sensor name", name, false).map_err(StoreError::Invalid)?;
    store.write(|db| {
        // FOR UPDATE: two replicas enrolling with one token at once; the second waits, sees
        // the token used, and fails.
        let row = db.query_opt(
            "SELECT jurisdiction_id FROM enrollment_tokens WHERE token_hash = $1 AND used_ms IS NULL AND expires_ms > $2 FOR UPDATE",
            &[&pg_text(token_hash), &now],
        )?;
        let Some(row) = row else {
            return Err(StoreError::NotFound("enrollment token unknown, used or expired".into()).into());
        };
        let jurisdiction_id: i64 = row.try_get(0)?;
        let id: i64 = db
            .query_one(
                "INSERT INTO sensors (jurisdiction_id, name, credential_hash, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&jurisdiction_id, &pg_text(name), &pg_text(credential_hash), &now],
            )?
            .try_get(0)?;
        db.execute("UPDATE enrollment_tokens SET used_ms = $1, sensor_id = $2 WHERE token_hash = $3", &[&now, &id, &pg_text(token_hash)])?;
        Ok(row_sensor(&db.query_one(SENSOR_BY_ID, &[&id])?)?)
    })
}

pub(super) fn sensor(store: &PgStore, id: i64) -> StoreResult<Option<Sensor>> {
    store.read(|db| Ok(db.query_opt(SENSOR_BY_ID, &[&id])?.as_ref().map(row_sensor).transpose()?))
}

pub(super) fn sensor_by_credential(store: &PgStore, credential_hash: &str) -> StoreResult<Option<Sensor>> {
    store.read(|db| {
        let row = db.query_opt(
            "SELECT id, jurisdiction_id, name, created_ms, last_seen_ms, last_event_ms, events_total FROM sensors WHERE credential_hash = $1",
            &[&pg_text(credential_hash)],
        )?;
        Ok(row.as_ref().map(row_sensor).transpose()?)
    })
}

pub(super) fn sensors(store: &PgStore, jurisdiction_id: Option<i64>) -> StoreResult<Vec<Sensor>> {
    store.read(|db| {
        let rows = db.query(
            "SELECT id, jurisdiction_id, name, created_ms, last_seen_ms, last_event_ms, events_total, \
             (SELECT e.body FROM events e WHERE e.event_type = 'engine' AND e.sensor_id = sensors.id \
              AND e.body::jsonb #>> '{engine,module}' = 'detect-reload' ORDER BY e.id DESC LIMIT 1) \
             FROM sensors WHERE ($1::bigint IS NULL OR jurisdiction_id = $1) ORDER BY id",
            &[&jurisdiction_id],
        )?;
        // The health column: the body of the sensor's newest rule-reload `engine` record.
        Ok(collect(rows, |r| {
            let mut sensor = row_sensor(r)?;
            let record: Option<String> = r.try_get(7)?;
            sensor.health = record.as_deref().and_then(crate::model::reload_health);
            Ok(sensor)
        })?)
    })
}

pub(super) fn create_contact(store: &PgStore, jurisdiction_id: i64, new: &NewContact, now: Millis) -> StoreResult<Contact> {
    check_text("contact target", &new.target, false).map_err(StoreError::Invalid)?;
    crate::notify::validate_contact(new).map_err(StoreError::Invalid)?;
    store.write(|db| {
        jurisdiction_exists(db, jurisdiction_id)?;
        let secret = new.secret.as_deref().map(pg_text);
        let id: i64 = db
            .query_one(
                "INSERT INTO contacts (jurisdiction_id, channel, target, secret, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&jurisdiction_id, &new.channel.as_str(), &pg_text(new.target.trim()), &secret, &now],
            )?
            .try_get(0)?;
        Ok(row_contact(&db.query_one(CONTACT_BY_ID, &[&id])?, 0)?)
    })
}

pub(super) fn contacts(store: &PgStore, jurisdiction_id: Option<i64>) -> StoreResult<Vec<Contact>> {
    store.read(|db| {
        let rows = db.query(
            "SELECT id, jurisdiction_id, channel, target, secret, created_ms, priority FROM contacts \
             WHERE ($1::bigint IS NULL OR jurisdiction_id = $1) ORDER BY id",
            &[&jurisdiction_id],
        )?;
        Ok(collect(rows, |r| row_contact(r, 0))?)
    })
}

pub(super) fn create_user(store: &PgStore, username: &str, password_hash: &str, role: Role, jurisdiction_id: Option<i64>, now: Millis) -> StoreResult<User> {
    let username = username.trim();
    if username.is_empty() || username.len() > 100 || username.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(StoreError::Invalid("username must be 1 to 100 characters without spaces".into()));
    }
    check_text("username", username, false).map_err(StoreError::Invalid)?;
    if (role == Role::Analyst) != jurisdiction_id.is_none() {
        return Err(StoreError::Invalid("an analyst has no jurisdiction; an admin or viewer needs exactly one".into()));
    }
    store.write(|db| {
        let inserted = db.query_one(
            "INSERT INTO users (username, password_hash, role, jurisdiction_id, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&username, &pg_text(password_hash), &role.as_str(), &jurisdiction_id, &now],
        );
        let id: i64 = match inserted {
            Ok(r) => r.try_get(0)?,
            Err(e) => {
                let e = TxError::from(e);
                return Err(match e.code() {
                    Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(format!("user {username:?} already exists")).into(),
                    Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => StoreError::NotFound(format!("jurisdiction {jurisdiction_id:?}")).into(),
                    _ => e,
                });
            }
        };
        Ok(row_user(&db.query_one(USER_BY_ID, &[&id])?)?)
    })
}

pub(super) fn user_credentials(store: &PgStore, username: &str) -> StoreResult<Option<(User, String)>> {
    store.read(|db| {
        let row = db.query_opt(
            "SELECT id, username, role, jurisdiction_id, created_ms, password_hash FROM users WHERE username = $1",
            &[&pg_text(username)],
        )?;
        Ok(row.map(|r| Ok::<_, ::postgres::Error>((row_user(&r)?, r.try_get(5)?))).transpose()?)
    })
}

pub(super) fn users(store: &PgStore, jurisdiction_id: Option<i64>) -> StoreResult<Vec<User>> {
    store.read(|db| {
        let rows = db.query(
            "SELECT id, username, role, jurisdiction_id, created_ms FROM users WHERE ($1::bigint IS NULL OR jurisdiction_id = $1) ORDER BY id",
            &[&jurisdiction_id],
        )?;
        Ok(collect(rows, row_user)?)
    })
}

pub(super) fn create_session(store: &PgStore, token_hash: &str, user_id: i64, csrf: &str, now: Millis, expires_ms: Millis) -> StoreResult<()> {
    store.write(|db| {
        db.execute("DELETE FROM sessions WHERE expires_ms < $1", &[&now])?;
        db.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
            &[&pg_text(token_hash), &user_id, &pg_text(csrf), &now, &expires_ms],
        )?;
        Ok(())
    })
}

pub(super) fn session(store: &PgStore, token_hash: &str, now: Millis) -> StoreResult<Option<(User, String)>> {
    store.read(|db| {
        let row = db.query_opt(
            "SELECT users.id, users.username, users.role, users.jurisdiction_id, users.created_ms, sessions.csrf \
             FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.token_hash = $1 AND sessions.expires_ms > $2",
            &[&pg_text(token_hash), &now],
        )?;
        Ok(row.map(|r| Ok::<_, ::postgres::Error>((row_user(&r)?, r.try_get(5)?))).transpose()?)
    })
}

pub(super) fn delete_session(store: &PgStore, token_hash: &str) -> StoreResult<()> {
    store.write(|db| {
        db.execute("DELETE FROM sessions WHERE token_hash = $1", &[&pg_text(token_hash)])?;
        Ok(())
    })
}
