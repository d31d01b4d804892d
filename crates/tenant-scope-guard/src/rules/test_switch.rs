//! `test-switch` ([`crate::TEST_SWITCH`]): the test kit's switch that takes a wall down
//! (`db.without_app_filter()`, feature `testing`) outside test code.

use syn::ExprMethodCall;

use super::Hit;
use crate::TEST_SWITCH;

/// A call of `.without_app_filter()`: a `TenantDb` whose scoped operations no longer add the
/// tenant filter, which belongs in the test kit's differential mode only.
pub(super) fn method_call(m: &ExprMethodCall) -> Option<Hit> {
    if m.method != "without_app_filter" || !m.args.is_empty() {
        return None;
    }
    Some(Hit {
        rule: TEST_SWITCH,
        message: "`without_app_filter()` turns the library's tenant filter off (the test kit's \
                  differential mode, feature `testing`): it belongs in tests, never in a service"
            .to_owned(),
    })
}
