"""The local stand-in for API Gateway: serves every route of ``template.yaml`` by calling that
function's real Lambda ``handler`` with a real HTTP API (payload 2.0) event. No Docker, no AWS."""
