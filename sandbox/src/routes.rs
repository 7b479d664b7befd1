//! Which operation a request is for, from its method and path.

use wiremock::http::Method;

use super::faults::Operation;

/// The route of a request; the path segments are as received (not decoded, not validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    Create {
        environment: &'a str,
        wallet: &'a str,
    },
    Read {
        environment: &'a str,
        wallet: &'a str,
    },
    Unknown,
}

/// The routes the sandbox serves, for the message of an unknown one.
pub(crate) const KNOWN_ROUTES: &str = "POST /environments/{environmentId}/waas/{walletId}/keyShares/backup/locations, GET /environments/{environmentId}/waas/{walletId}";

impl<'a> Route<'a> {
    pub(crate) fn parse(method: &Method, path: &'a str) -> Self {
        let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
        let mut next = || segments.next();
        let (Some("environments"), Some(environment), Some("waas"), Some(wallet)) =
            (next(), next(), next(), next())
        else {
            return Route::Unknown;
        };
        let rest = (next(), next(), next(), next());
        match (method.as_str(), rest) {
            ("GET", (None, None, None, None)) => Route::Read {
                environment,
                wallet,
            },
            ("POST", (Some("keyShares"), Some("backup"), Some("locations"), None)) => {
                Route::Create {
                    environment,
                    wallet,
                }
            }
            _ => Route::Unknown,
        }
    }

    pub(crate) fn operation(&self) -> Option<Operation> {
        match self {
            Route::Create { .. } => Some(Operation::Create),
            Route::Read { .. } => Some(Operation::Read),
            Route::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_routes_and_nothing_else() {
        let create = Route::parse(
            &Method::POST,
            "/environments/e/waas/w/keyShares/backup/locations",
        );
        assert_eq!(
            create,
            Route::Create {
                environment: "e",
                wallet: "w"
            }
        );
        let read = Route::parse(&Method::GET, "/environments/e/waas/w");
        assert_eq!(
            read,
            Route::Read {
                environment: "e",
                wallet: "w"
            }
        );
        for (method, path) in [
            (
                Method::GET,
                "/environments/e/waas/w/keyShares/backup/locations",
            ),
            (Method::POST, "/environments/e/waas/w"),
            (Method::GET, "/environments/e/waas/w/"),
            (Method::GET, "/environments/e/waas"),
            (
                Method::POST,
                "/environments/e/waas/w/keyShares/backup/locations/x",
            ),
            (Method::DELETE, "/environments/e/waas/w"),
            (Method::GET, "/"),
            (Method::GET, ""),
        ] {
            assert_eq!(
                Route::parse(&method, path),
                Route::Unknown,
                "{method} {path}"
            );
        }
    }
}
