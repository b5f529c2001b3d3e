//! `GET /api/v1/openapi.json`: the API as its handlers' own types describe it.

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "ngbak operator API", description = "Back up, verify, restore, download, upload and delete GraphRAG backups; follow the jobs."),
    paths(
        super::backups::list,
        super::backups::show,
        super::backups::download,
        super::backups::delete,
        super::backups::start_backup,
        super::backups::start_verify,
        super::backups::start_restore,
        super::uploads::upload,
        super::uploads::complete,
        super::progress::list,
        super::progress::show,
        super::progress::events,
    ),
    components(schemas(super::problem::Problem, super::jobs::Job, super::jobs::Status, super::jobs::Kind,
                        super::jobs::Request, super::jobs::JobError, crate::progress::Snapshot)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// `serve`'s bearer token, as the document's security scheme.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        openapi.security =
            Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
