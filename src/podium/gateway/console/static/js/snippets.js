// How to call an endpoint: its /run URL and a ready-to-copy curl line.

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
