// Guarantee: a `TenantContext` cannot be deserialized.
//
// A context read from a request body, a header, a cookie or a queue message would be a claim, not a
// proof. The claim is deserialized and then verified (tests/ui/pass/context_deserialize.rs).

use tenant_scope::TenantContext;

fn main() {
    let json = r#"{
        "tenant": "0192f3a0-7c1e-7cc3-8a5e-3f1d2b4c5d6e",
        "actor": { "User": "0192f3a0-7c1e-7cc3-8a5e-3f1d2b4c5d6f" },
        "permissions": ["projects.write"],
        "request_id": "forged"
    }"#;
    let _ctx = serde_json::from_str::<TenantContext>(json);
}
