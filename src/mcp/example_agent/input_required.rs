//! The example agent's 2026-07-28 multi round-trip fixtures (SEP-2322),
//! served with `--conformance`: a request that needs the client (its LLM,
//! its user, its roots) answers an `input_required` result listing what it
//! needs, and the client calls again with `inputResponses` (and the echoed
//! `requestState`).
//!
//! [`Needs`] collects one round: which answers came, which requests are
//! still to ask; it asks only what the client declared a capability for
//! and otherwise fails with -32021 (SEP-2575). [`StateSeal`] seals
//! `requestState` with an HMAC so a tampered or foreign state is refused.
//! [`tool`] and [`prompt`] are the `test_input_required_result_*` fixtures
//! the conformance suite's `input-required-result-*` scenarios call.
#![allow(deprecated)] // sampling and roots are deprecated by SEP-2577 (see conformance.rs)

use std::collections::BTreeMap;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, CreateMessageResult,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, InputRequest, InputRequests,
    InputRequiredResult, InputResponses, PromptMessage, Role, SamplingMessageContentBlock,
};
use rmcp::{ErrorData, RoleServer, service::RequestContext};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::conformance::{client_capabilities, text};

/// The fixture tools of this module: (name, description).
pub const TOOLS: [(&str, &str); 8] = [
    (
        "test_input_required_result_elicitation",
        "Asks the user's name through an input_required result (2026-07-28)",
    ),
    (
        "test_input_required_result_sampling",
        "Asks the client's LLM through an input_required result (2026-07-28)",
    ),
    (
        "test_input_required_result_list_roots",
        "Asks the client's roots through an input_required result (2026-07-28)",
    ),
    (
        "test_input_required_result_request_state",
        "An input_required result with a sealed requestState (2026-07-28)",
    ),
    (
        "test_input_required_result_multiple_inputs",
        "Elicitation, sampling and roots in one input_required result (2026-07-28)",
    ),
    (
        "test_input_required_result_multi_round",
        "Two input_required rounds before the answer (2026-07-28)",
    ),
    (
        "test_input_required_result_tampered_state",
        "Refuses a requestState it did not seal (2026-07-28)",
    ),
    (
        "test_input_required_result_capabilities",
        "Asks only for the inputs the client declared capabilities for (2026-07-28)",
    ),
];

/// The fixture prompt of this module.
pub const PROMPT: &str = "test_input_required_result_prompt";

/// An input request from its JSON form (the spec's shape).
fn input_request(v: Value) -> Result<InputRequest, ErrorData> {
    serde_json::from_value(v)
        .map_err(|e| ErrorData::internal_error(format!("building an input request: {e}"), None))
}

/// An `elicitation/create` form request.
pub fn elicit_request(message: &str, schema: Value) -> Result<InputRequest, ErrorData> {
    input_request(json!({
        "method": "elicitation/create",
        "params": {"mode": "form", "message": message, "requestedSchema": schema}
    }))
}

/// A `sampling/createMessage` request with one user message.
pub fn sampling_request(prompt: &str, max_tokens: u32) -> Result<InputRequest, ErrorData> {
    input_request(json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
            "maxTokens": max_tokens
        }
    }))
}

fn roots_request() -> Result<InputRequest, ErrorData> {
    input_request(json!({"method": "roots/list"}))
}

/// A form with one required string field.
fn one_field(field: &str) -> Value {
    json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]})
}

fn confirm_form() -> Value {
    json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})
}

/// The text of a sampling answer's first text block.
pub fn sampling_text(r: &CreateMessageResult) -> String {
    match r.message.content.first() {
        Some(SamplingMessageContentBlock::Text(t)) => t.text.clone(),
        _ => "(no text)".into(),
    }
}

/// `content.{field}` of an accepted elicitation answer.
fn elicited_field(answer: &Value, key: &str, field: &str) -> Result<String, ErrorData> {
    let action = answer.get("action").and_then(Value::as_str);
    if action != Some("accept") {
        return Err(ErrorData::invalid_params(
            format!("inputResponses.{key}: the user did not accept (action {action:?})"),
            None,
        ));
    }
    answer
        .get("content")
        .and_then(|c| c.get(field))
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| {
            ErrorData::invalid_params(
                format!("inputResponses.{key}.content.{field} must be a string"),
                None,
            )
        })
}

/// The text of a sampling answer under `key`.
pub fn sampled(answer: &Value, key: &str) -> Result<String, ErrorData> {
    let r: CreateMessageResult = serde_json::from_value(answer.clone())
        .map_err(|e| ErrorData::invalid_params(format!("inputResponses.{key}: {e}"), None))?;
    Ok(sampling_text(&r))
}

/// The URIs of a `roots/list` answer.
fn root_uris(answer: &Value, key: &str) -> Result<Vec<String>, ErrorData> {
    let roots = answer
        .get("roots")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ErrorData::invalid_params(format!("inputResponses.{key}.roots must be a list"), None)
        })?;
    roots
        .iter()
        .map(|r| {
            r.get("uri")
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| {
                    ErrorData::invalid_params(
                        format!("inputResponses.{key}: a root has no uri"),
                        None,
                    )
                })
        })
        .collect()
}

/// The client capability an input request needs.
fn capability_of(request: &InputRequest) -> Option<&'static str> {
    match request {
        InputRequest::CreateMessage(_) => Some("sampling"),
        InputRequest::Elicitation(_) => Some("elicitation"),
        InputRequest::ListRoots(_) => Some("roots"),
        _ => None,
    }
}

fn declares(caps: &ClientCapabilities, capability: &str) -> bool {
    match capability {
        "sampling" => caps.sampling.is_some(),
        "elicitation" => caps.elicitation.is_some(),
        "roots" => caps.roots.is_some(),
        _ => false,
    }
}

/// One round of an `input_required` exchange: the answers the client sent,
/// what is still to ask, and what could not be asked.
pub struct Needs {
    responses: InputResponses,
    capabilities: ClientCapabilities,
    missing: InputRequests,
    /// Capabilities a needed request requires that the client lacks.
    undeclared: Vec<&'static str>,
}

impl Needs {
    pub fn new(responses: Option<&InputResponses>, capabilities: ClientCapabilities) -> Self {
        Needs {
            responses: responses.cloned().unwrap_or_default(),
            capabilities,
            missing: BTreeMap::new(),
            undeclared: Vec::new(),
        }
    }

    /// For a tool call.
    pub fn of_call(request: &CallToolRequestParams, ctx: &RequestContext<RoleServer>) -> Self {
        Self::new(request.input_responses.as_ref(), client_capabilities(ctx))
    }

    /// The client's answer under `key`; `None` once `request` is noted as
    /// to ask (or, when the client lacks its capability, as undeclared).
    /// Answers under keys the fixture does not ask are ignored.
    pub fn input(&mut self, key: &str, request: InputRequest) -> Result<Option<Value>, ErrorData> {
        match self.responses.get(key) {
            Some(v) if v.is_object() => Ok(Some(v.clone())),
            Some(_) => Err(ErrorData::invalid_params(
                format!("inputResponses.{key} must be an object"),
                None,
            )),
            None => {
                match capability_of(&request) {
                    Some(c) if !declares(&self.capabilities, c) => {
                        if !self.undeclared.contains(&c) {
                            self.undeclared.push(c);
                        }
                    }
                    _ => {
                        self.missing.insert(key.to_string(), request);
                    }
                }
                Ok(None)
            }
        }
    }

    /// Like [`Self::input`] for an input the fixture can do without: one
    /// the client has no capability for is neither asked nor an error.
    fn optional_input(
        &mut self,
        key: &str,
        request: InputRequest,
    ) -> Result<Option<Value>, ErrorData> {
        match capability_of(&request) {
            Some(c) if !declares(&self.capabilities, c) => Ok(None),
            _ => self.input(key, request),
        }
    }

    /// The `input_required` result asking every missing input, with
    /// `state`; -32021 (MissingRequiredClientCapability) when a needed
    /// input needs a capability the client did not declare.
    pub fn ask(self, state: Option<String>) -> Result<CallToolResponse, ErrorData> {
        self.ask_result(state).map(Into::into)
    }

    fn ask_result(self, state: Option<String>) -> Result<InputRequiredResult, ErrorData> {
        if !self.undeclared.is_empty() {
            let required: serde_json::Map<String, Value> = self
                .undeclared
                .iter()
                .map(|c| (c.to_string(), json!({})))
                .collect();
            let required = serde_json::from_value(Value::Object(required)).map_err(|e| {
                ErrorData::internal_error(format!("required capabilities: {e}"), None)
            })?;
            return Err(ErrorData::missing_required_client_capability(required));
        }
        let requests = (!self.missing.is_empty()).then_some(self.missing);
        if requests.is_none() && state.is_none() {
            return Err(ErrorData::internal_error(
                "an input_required result needs requests or a state",
                None,
            ));
        }
        Ok(InputRequiredResult::new(requests, state))
    }
}

/// Seals and opens `requestState`: `hex(payload).hex(tag)` with tag =
/// HMAC-SHA256(key, bound_to || 0 || payload), `bound_to` naming the fixture
/// so one fixture's state is refused by another.
pub struct StateSeal {
    key: [u8; 32],
}

impl StateSeal {
    /// A seal with a key drawn now; the key never leaves the process.
    pub fn random() -> Self {
        StateSeal {
            key: rand::random(),
        }
    }

    fn tag(&self, bound_to: &str, payload: &[u8]) -> [u8; 32] {
        // HMAC (RFC 2104) over SHA-256, whose block is 64 bytes.
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in self.key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(bound_to.as_bytes())
            .chain_update([0u8])
            .chain_update(payload)
            .finalize();
        Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize()
            .into()
    }

    pub fn seal(&self, bound_to: &str, payload: &str) -> String {
        let tag = self.tag(bound_to, payload.as_bytes());
        format!("{}.{}", hex::encode(payload), hex::encode(tag))
    }

    /// The payload of `state`, if there is one; a state not sealed here for
    /// `bound_to` is an error (-32602).
    pub fn open(&self, state: Option<&str>, bound_to: &str) -> Result<Option<String>, ErrorData> {
        let Some(state) = state else {
            return Ok(None);
        };
        let refused = || ErrorData::invalid_params("requestState failed its integrity check", None);
        let (payload, tag) = state.split_once('.').ok_or_else(refused)?;
        let payload = hex::decode(payload).map_err(|_| refused())?;
        let tag = hex::decode(tag).map_err(|_| refused())?;
        let expected = self.tag(bound_to, &payload);
        // Constant time, so a forger learns nothing from how long the
        // comparison took.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            tag.as_slice(),
            expected.as_slice(),
        )) {
            return Err(refused());
        }
        String::from_utf8(payload).map(Some).map_err(|_| refused())
    }
}

/// Calls fixture tool `name` (one of [`TOOLS`]) on a 2026-07-28 request.
pub async fn tool(
    name: &str,
    request: &CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
    seal: &StateSeal,
) -> Result<CallToolResponse, ErrorData> {
    let mut needs = Needs::of_call(request, ctx);
    let state = seal.open(request.request_state.as_deref(), name)?;
    match name {
        "test_input_required_result_elicitation" => {
            let Some(v) = needs.input(
                "user_name",
                elicit_request("What is your name?", one_field("name"))?,
            )?
            else {
                return needs.ask(None);
            };
            let who = elicited_field(&v, "user_name", "name")?;
            Ok(text(format!("Hello, {who}!")))
        }
        "test_input_required_result_sampling" => {
            let Some(v) = needs.input(
                "capital_question",
                sampling_request("What is the capital of France?", 100)?,
            )?
            else {
                return needs.ask(None);
            };
            let answer = sampled(&v, "capital_question")?;
            Ok(text(format!("The LLM answered: {answer}")))
        }
        "test_input_required_result_list_roots" => {
            let Some(v) = needs.input("client_roots", roots_request()?)? else {
                return needs.ask(None);
            };
            let roots = root_uris(&v, "client_roots")?;
            Ok(text(format!(
                "The client has {} roots: {}",
                roots.len(),
                roots.join(", ")
            )))
        }
        "test_input_required_result_request_state" => {
            let confirm =
                needs.input("confirm", elicit_request("Please confirm", confirm_form())?)?;
            match (confirm, state.as_deref()) {
                (Some(v), Some("confirm")) => {
                    let ok = v
                        .get("content")
                        .and_then(|c| c.get("ok"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    Ok(text(format!("state-ok: confirmed={ok}")))
                }
                _ => needs.ask(Some(seal.seal(name, "confirm"))),
            }
        }
        "test_input_required_result_multiple_inputs" => {
            let user = needs.input(
                "user_name",
                elicit_request("What is your name?", one_field("name"))?,
            )?;
            let greeting = needs.input("greeting", sampling_request("Generate a greeting", 50)?)?;
            let roots = needs.input("client_roots", roots_request()?)?;
            match (user, greeting, roots, state.as_deref()) {
                (Some(u), Some(g), Some(r), Some("all")) => {
                    let who = elicited_field(&u, "user_name", "name")?;
                    let greeting = sampled(&g, "greeting")?;
                    let roots = root_uris(&r, "client_roots")?;
                    Ok(text(format!(
                        "{greeting} {who}; {} roots: {}",
                        roots.len(),
                        roots.join(", ")
                    )))
                }
                _ => needs.ask(Some(seal.seal(name, "all"))),
            }
        }
        "test_input_required_result_multi_round" => {
            // Round 1 asks step1; round 2 keeps the name in the sealed state
            // and asks step2; round 3 answers.
            let step2 =
                || elicit_request("Step 2: What is your favorite color?", one_field("color"));
            if let Some(who) = state.as_deref().and_then(|s| s.strip_prefix("step2:")) {
                let Some(v) = needs.input("step2", step2()?)? else {
                    return needs.ask(Some(seal.seal(name, &format!("step2:{who}"))));
                };
                let color = elicited_field(&v, "step2", "color")?;
                return Ok(text(format!("{who} likes {color}")));
            }
            let Some(v) = needs.input(
                "step1",
                elicit_request("Step 1: What is your name?", one_field("name"))?,
            )?
            else {
                return needs.ask(Some(seal.seal(name, "step1")));
            };
            let who = elicited_field(&v, "step1", "name")?;
            let mut next = Needs::new(None, client_capabilities(ctx));
            next.input("step2", step2()?)?;
            next.ask(Some(seal.seal(name, &format!("step2:{who}"))))
        }
        "test_input_required_result_tampered_state" => {
            let confirm =
                needs.input("confirm", elicit_request("Please confirm", confirm_form())?)?;
            match (confirm, state) {
                (Some(_), Some(_)) => Ok(text("requestState verified")),
                _ => needs.ask(Some(seal.seal(name, "confirm"))),
            }
        }
        "test_input_required_result_capabilities" => {
            let user = needs.optional_input(
                "user_name",
                elicit_request("What is your name?", one_field("name"))?,
            )?;
            let greeting =
                needs.optional_input("greeting", sampling_request("Generate a greeting", 50)?)?;
            let roots = needs.optional_input("client_roots", roots_request()?)?;
            if !needs.missing.is_empty() {
                return needs.ask(None);
            }
            let mut got = Vec::new();
            if let Some(u) = user {
                got.push(format!("name {}", elicited_field(&u, "user_name", "name")?));
            }
            if let Some(g) = greeting {
                got.push(format!("greeting {:?}", sampled(&g, "greeting")?));
            }
            if let Some(r) = roots {
                got.push(format!("{} roots", root_uris(&r, "client_roots")?.len()));
            }
            Ok(text(if got.is_empty() {
                "the client declared none of elicitation, sampling, roots".to_string()
            } else {
                format!("asked what the client supports: {}", got.join("; "))
            }))
        }
        other => Err(ErrorData::invalid_params(
            format!("no tool {other:?}"),
            None,
        )),
    }
}

/// `test_input_required_result_prompt`: asks the user for context, then
/// gives the prompt (2026-07-28).
pub fn prompt(
    request: &GetPromptRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Result<GetPromptResponse, ErrorData> {
    let mut needs = Needs::new(request.input_responses.as_ref(), client_capabilities(ctx));
    let Some(v) = needs.input(
        "user_context",
        elicit_request("What context should the prompt use?", one_field("context"))?,
    )?
    else {
        return needs.ask_result(None).map(Into::into);
    };
    let context = elicited_field(&v, "user_context", "context")?;
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        format!("Answer with this context in mind: {context}"),
    )])
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_requests_parse_into_rmcp_types() {
        for r in [
            elicit_request("m", one_field("name")),
            sampling_request("p", 10),
            roots_request(),
        ] {
            let r = r.expect("parses");
            let v = serde_json::to_value(&r).expect("serialises");
            assert!(v["method"].is_string(), "{v}");
            assert!(capability_of(&r).is_some(), "{v}");
        }
    }

    #[test]
    fn sealed_state_opens_only_unchanged_and_for_its_fixture() {
        let seal = StateSeal::random();
        let sealed = seal.seal("tool_a", "step2:Alice");
        assert_eq!(
            seal.open(Some(&sealed), "tool_a").expect("opens"),
            Some("step2:Alice".to_string())
        );
        assert!(seal.open(Some(&sealed), "tool_b").is_err());
        assert!(
            seal.open(Some(&format!("{sealed}-TAMPERED")), "tool_a")
                .is_err()
        );
        let forged = format!(
            "{}.{}",
            hex::encode("step2:Mallory"),
            sealed.split_once('.').map(|(_, t)| t).unwrap_or("")
        );
        assert!(seal.open(Some(&forged), "tool_a").is_err());
        assert!(seal.open(Some("garbage"), "tool_a").is_err());
        assert!(StateSeal::random().open(Some(&sealed), "tool_a").is_err());
        assert_eq!(seal.open(None, "tool_a").expect("no state"), None);
    }

    #[test]
    fn needs_asks_only_declared_capabilities() {
        let caps: ClientCapabilities =
            serde_json::from_value(json!({"sampling": {}})).expect("capabilities");
        let mut needs = Needs::new(None, caps.clone());
        assert!(
            needs
                .optional_input("e", elicit_request("m", one_field("x")).expect("request"))
                .expect("fine")
                .is_none()
        );
        assert!(
            needs
                .optional_input("s", sampling_request("p", 1).expect("request"))
                .expect("fine")
                .is_none()
        );
        let asked = needs.ask_result(None).expect("asks");
        let keys: Vec<_> = asked
            .input_requests
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(keys, ["s"]);

        let mut needs = Needs::new(None, caps);
        needs
            .input("e", elicit_request("m", one_field("x")).expect("request"))
            .expect("fine");
        let err = needs
            .ask_result(None)
            .expect_err("elicitation is not declared");
        assert_eq!(err.code.0, -32021);
        assert_eq!(
            err.data,
            Some(json!({"requiredCapabilities": {"elicitation": {}}}))
        );
    }

    #[test]
    fn needs_returns_answers_and_refuses_malformed_ones() {
        let responses: InputResponses = [
            (
                "a".to_string(),
                json!({"action": "accept", "content": {"name": "Ann"}}),
            ),
            ("b".to_string(), json!("not an object")),
        ]
        .into_iter()
        .collect();
        let caps: ClientCapabilities =
            serde_json::from_value(json!({"elicitation": {}})).expect("capabilities");
        let mut needs = Needs::new(Some(&responses), caps);
        let a = needs
            .input(
                "a",
                elicit_request("m", one_field("name")).expect("request"),
            )
            .expect("answer")
            .expect("present");
        assert_eq!(elicited_field(&a, "a", "name").expect("name"), "Ann");
        assert!(
            needs
                .input(
                    "b",
                    elicit_request("m", one_field("name")).expect("request")
                )
                .is_err()
        );
    }
}
