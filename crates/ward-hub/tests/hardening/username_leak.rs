//! Low: creating a user does not reveal other jurisdictions' usernames.
