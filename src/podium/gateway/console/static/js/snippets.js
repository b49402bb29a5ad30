// How to call an endpoint: its /run URL and a ready-to-copy curl line; a load-balancing
// endpoint: its URLs (path form /lb/ID/, host form ID.<gateway host>) and a curl line.

export const TUTORIAL_PROMPT = "A cute fluffy white dog in the style of a Pixar animation 3D drawing.";

export function runUrl(baseUrl, endpointId) {
  return `${baseUrl}/v2/${endpointId}/run`;
}

/** The tutorial's request for SD endpoints; an empty input for the others. */
export function curlLine(baseUrl, endpoint) {
  const body =
    endpoint.templateId === "sd15"
      ? `{"input": {"prompt": "${TUTORIAL_PROMPT}"}}`
      : '{"input": {}}';
  return [
    `curl -X POST ${runUrl(baseUrl, endpoint.id)} \\`,
    '  -H "Authorization: Bearer $PODIUM_API_KEY" \\',
    '  -H "Content-Type: application/json" \\',
    `  -d '${body}'`,
  ].join("\n");
}

export const LOAD_BALANCER = "LOAD_BALANCER";

export function isLoadBalancer(endpoint) {
  return endpoint.type === LOAD_BALANCER;
}

/** "Queue" or "Load balancer" (endpoints listed by /v1/me carry no type: queue). */
export function typeLabel(endpoint) {
  return isLoadBalancer(endpoint) ? "Load balancer" : "Queue";
}

/** A load-balancing endpoint's path form: any path of its workers' server after it. */
export function lbUrl(baseUrl, endpointId) {
  return `${baseUrl}/lb/${endpointId}/`;
}

/** Its host form, RunPod's shape (as the gateway's lb_url): ID.localhost for a loopback
 *  gateway, ID.<host> for a named one; null for a gateway known by an IP address. */
export function lbHostUrl(baseUrl, endpointId) {
  let url;
  try {
    url = new URL(baseUrl);
  } catch {
    return null;
  }
  const port = url.port ? `:${url.port}` : "";
  const host = url.hostname;
  if (["127.0.0.1", "[::1]", "localhost"].includes(host)) return `${url.protocol}//${endpointId}.localhost${port}/`;
  if (host.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(host)) return null;
  return `${url.protocol}//${endpointId}.${host}${port}/`;
}

export function lbCurlLine(baseUrl, endpoint) {
  return [
    `curl ${lbUrl(baseUrl, endpoint.id)} \\`,
    '  -H "Authorization: Bearer $PODIUM_API_KEY"',
  ].join("\n");
}
