//! Low: POST /api/v1/campaigns/{id} with a body that changes nothing is refused.
