//! The front's prompts, resources, templates and completions: listed from
//! the table, and `prompts/get`, `resources/read` and
//! `completion/complete` routed to the origin like tool calls (same access
//! policy, deadlines and errors), with front names mapped back to the
//! origin's names on the way in.

use rmcp::model::{
    CompleteRequestParams, CompleteResult, ErrorCode, GetPromptRequestParams, GetPromptResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, Prompt,
    ReadResourceRequestParams, ReadResourceResult, Resource, ResourceTemplate,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};

use super::table::FrontItem;
use super::{CallSpec, FrontServer, error_of};
use crate::core::call::{CallOp, CallOutcome};
use crate::mcp::items::ItemKind;

/// The JSON-RPC code MCP gives an unknown resource (SEP-2164).
pub(super) const RESOURCE_NOT_FOUND: i32 = -32002;

fn listed<T: DeserializeOwned>(i: &FrontItem) -> Option<T> {
    match serde_json::from_value(Json::Object(i.listed())) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(item = %i.name, error = %e, "a routed item does not parse; not listed");
            None
        }
    }
}

impl FrontServer {
    pub(super) fn prompts(&self) -> ListPromptsResult {
        let t = self.link.table();
        let p: Vec<Prompt> = t.items(ItemKind::Prompt).filter_map(listed).collect();
        ListPromptsResult::with_all_items(p)
    }

    pub(super) fn resources(&self) -> ListResourcesResult {
        let t = self.link.table();
        let r: Vec<Resource> = t.items(ItemKind::Resource).filter_map(listed).collect();
        ListResourcesResult::with_all_items(r)
    }

    pub(super) fn templates(&self) -> ListResourceTemplatesResult {
        let t = self.link.table();
        let r: Vec<ResourceTemplate> = t.items(ItemKind::Template).filter_map(listed).collect();
        ListResourceTemplatesResult::with_all_items(r)
    }

    /// Routes an item operation and reads the origin's answer as `T`.
    async fn item_call<T: DeserializeOwned>(
        &self,
        item: &FrontItem,
        op: CallOp,
        arguments: Json,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<T, ErrorData> {
        let spec = CallSpec {
            target: item.routed.prefix.clone(),
            tool: Some(item.routed.key.clone()),
            op,
            arguments,
            // Reads: safe to retry on another path.
            idempotent: true,
            balance: false,
            timeout: self.default_timeout,
            log_level: None,
        };
        let ret = self
            .routed(spec, None, ctx)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        match ret.outcome {
            CallOutcome::Ok(v) => serde_json::from_value(v).map_err(|e| {
                ErrorData::internal_error(
                    format!("the origin's answer to {} is malformed: {e}", op.method()),
                    None,
                )
            }),
            CallOutcome::Err(e) => Err(error_of(e, &ret.trace)),
        }
    }

    pub(super) async fn get_routed_prompt(
        &self,
        req: GetPromptRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResult, ErrorData> {
        let table = self.link.table();
        let Some(item) = table.item(ItemKind::Prompt, &req.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "no prompt {:?} is routed to this node (list the prompts again: routes change)",
                    req.name
                ),
                None,
            ));
        };
        let args = serde_json::to_value(req.arguments.unwrap_or_default()).unwrap_or(Json::Null);
        self.item_call(item, CallOp::Prompt, args, ctx).await
    }

    pub(super) async fn read_routed(
        &self,
        req: ReadResourceRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let table = self.link.table();
        let Some((item, origin_uri)) = table.resolve_uri(&req.uri) else {
            return Err(ErrorData::new(
                ErrorCode(RESOURCE_NOT_FOUND),
                format!(
                    "Resource not found: no resource or template routed to this node serves {}",
                    req.uri
                ),
                Some(json!({"uri": req.uri})),
            ));
        };
        let mut r: ReadResourceResult = self
            .item_call(item, CallOp::Resource, json!({"uri": origin_uri}), ctx)
            .await?;
        if origin_uri != req.uri {
            // The client knows the resource by its front name.
            let mut v = serde_json::to_value(&r).unwrap_or(Json::Null);
            if let Some(Json::Array(contents)) = v.get_mut("contents") {
                for c in contents {
                    if c.get("uri").and_then(Json::as_str) == Some(origin_uri.as_str()) {
                        c["uri"] = Json::String(req.uri.clone());
                    }
                }
            }
            if let Ok(mapped) = serde_json::from_value(v) {
                r = mapped;
            }
        }
        Ok(r)
    }

    pub(super) async fn complete_routed(
        &self,
        req: CompleteRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let table = self.link.table();
        let mut params = serde_json::to_value(&req)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let r = params.get("ref").cloned().unwrap_or(Json::Null);
        let ty = r.get("type").and_then(Json::as_str).unwrap_or_default();
        let (item, field) = match ty {
            "ref/prompt" => {
                let name = r.get("name").and_then(Json::as_str).unwrap_or_default();
                (table.item(ItemKind::Prompt, name), "name")
            }
            "ref/resource" => {
                let uri = r.get("uri").and_then(Json::as_str).unwrap_or_default();
                (
                    table
                        .item(ItemKind::Template, uri)
                        .or_else(|| table.item(ItemKind::Resource, uri)),
                    "uri",
                )
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown completion ref type {other:?}"),
                    None,
                ));
            }
        };
        let Some(item) = item else {
            return Err(ErrorData::invalid_params(
                format!("nothing routed to this node matches the completion ref {r}"),
                None,
            ));
        };
        if item.routed.kind == ItemKind::Resource {
            // A plain resource has no arguments to complete.
            return Ok(CompleteResult::default());
        }
        params["ref"][field] = Json::String(item.routed.key.clone());
        self.item_call(item, CallOp::Complete, params, ctx).await
    }
}
