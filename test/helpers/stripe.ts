// Stripe webhook signing secrets (test-only `whsec_` values): the current one signs, the previous one is
// still accepted during a rotation. Pure.
export const WEBHOOK_SECRET = "whsec_test_current_0123456789abcdef";
export const PREVIOUS_WEBHOOK_SECRET = "whsec_test_previous_fedcba9876543210";
