//! What the admin API answers when a request fails, and with which HTTP
//! status: one type for every handler, so the status says what went wrong
//! (the request, the thing it names, or the node).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The request is malformed: not a peer id, not an `[[agents]]` entry.
    #[error("{0}")]
    BadRequest(String),
    /// It names a peer or an agent this node does not have.
    #[error("{0}")]
    NotFound(String),
    /// It would create what exists already (an agent id).
    #[error("{0}")]
    Conflict(String),
    /// The node could not carry it out (the store refused the change, an
    /// agent's process would not start).
    #[error("{0}")]
    Failed(String),
    /// The node task did not take the request (busy or stopping).
    #[error("node is busy or stopping")]
    Busy,
    /// The node task took it and did not answer in time.
    #[error("node did not answer")]
    NoAnswer,
}

impl AdminError {
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AdminError::Busy | AdminError::NoAnswer => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
        };
        (self.status(), Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_status() {
        let cases = [
            (AdminError::BadRequest("x".into()), 400),
            (AdminError::NotFound("x".into()), 404),
            (AdminError::Conflict("x".into()), 409),
            (AdminError::Failed("x".into()), 500),
            (AdminError::Busy, 503),
            (AdminError::NoAnswer, 503),
        ];
        for (e, code) in cases {
            assert_eq!(e.status().as_u16(), code, "{e:?}");
            assert_eq!(e.into_response().status().as_u16(), code);
        }
    }
}
