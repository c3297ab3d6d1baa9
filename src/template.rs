//! Filling `{name}` placeholders in the texts an operator can edit (the
//! Tribute reply, the customer templates). One pass over the template: a
//! value is never scanned again, so a product called "{price}" or a
//! customer's text with braces cannot pull in another placeholder.

/// `template` with every `{key}` of `vars` replaced by its value; unknown
/// placeholders and lone braces stay as written.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after
            .find('}')
            .and_then(|close| vars.iter().find(|(k, _)| *k == &after[..close]).map(|(_, v)| (close, *v)));
        match value {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fills_known_placeholders_once_and_leaves_the_rest() {
        let vars = [("product", "VIP {price}"), ("price", "€5.00")];
        assert_eq!(fill("{product} for {price}", &vars), "VIP {price} for €5.00");
        assert_eq!(fill("{unknown} {product", &vars), "{unknown} {product");
        assert_eq!(fill("{{price}}", &vars), "{€5.00}");
        assert_eq!(fill("Привет, {name}!", &[("name", "Мария")]), "Привет, Мария!");
        assert_eq!(fill("", &vars), "");
    }
}
