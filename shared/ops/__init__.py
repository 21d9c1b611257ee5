"""Operations: log context, metrics, Application Insights, the invocation scope, readiness, the OpenAPI document."""
