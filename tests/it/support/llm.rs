//! The real chat servers `.ci/run` starts with contrib/peers/llm.sh:
//! llama.cpp's `llama-server` serving SmolLM2-135M on 127.0.0.1, with jinja
//! chat templates (`LLM_URL`) and without them (`LLM_NO_JINJA_URL`).

/// The base URL (`http://127.0.0.1:PORT/v1`) in the environment variable
/// `var`. Without it the test named `test` is skipped, and says so on
/// stderr (`--nocapture` shows it); with `CI` set a missing URL fails the
/// test instead, because CI starts the servers.
pub fn llm_url(var: &str, test: &str) -> Option<String> {
    if let Some(url) = std::env::var(var).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        return Some(url);
    }
    assert!(
        !super::on_ci(),
        "CI is set but {var} is not: CI must start the LLM servers (see .ci/run and contrib/peers/llm.sh)"
    );
    eprintln!(
        "SKIPPED {test}: {var} is not set (start a server with `contrib/peers/llm.sh start{}` and set {var} to the LLM_URL it prints)",
        if var.contains("NO_JINJA") { " --no-jinja" } else { "" }
    );
    None
}

/// The model the server lists first (llama-server lists its file name).
pub async fn served_model(base: &str) -> String {
    let models: serde_json::Value =
        super::http().get(format!("{base}/models")).send().await.unwrap().json().await.unwrap();
    models["data"][0]["id"].as_str().unwrap_or_else(|| panic!("no model in {models}")).to_owned()
}
