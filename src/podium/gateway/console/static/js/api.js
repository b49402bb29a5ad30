// The gateway's HTTP API, as the console uses it: JSON in, JSON out, errors as ApiError.
// Every error body of the gateway is {"error": "<one sentence>"}; that sentence is shown.

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0: the gateway could not be reached
    this.body = body;
  }
}

export class Api {
  /** key: the API key (null on a gateway started with --insecure-no-auth).
   *  onUnauthorized: called when a signed-in key gets 401 (revoked meanwhile). */
  constructor(key, onUnauthorized = null) {
    this.key = key;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body = undefined, { signal } = {}) {
    const headers = { Accept: "application/json" };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "Cannot reach the gateway: is it running, and is this page served by it?");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!response.ok) {
      const message = (data && data.error) || `${response.status} ${response.statusText}`;
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized(message);
      throw new ApiError(response.status, message, data);
    }
    return data;
  }

  /** A request with this key, answered as it is: the Response, whatever its status (the
   *  test request of a load-balancing endpoint shows its worker's own answer). */
  async send(method, path, { headers = {}, body = undefined, signal } = {}) {
    const all = { ...headers };
    if (this.key) all.Authorization = `Bearer ${this.key}`;
    try {
      return await fetch(path, { method, headers: all, body, signal, cache: "no-store" });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "Cannot reach the gateway: is it running, and is this page served by it?");
    }
  }

  get(path, options) {
    return this.request("GET", path, undefined, options);
  }

  post(path, body = {}, options) {
    return this.request("POST", path, body, options);
  }

  patch(path, body, options) {
    return this.request("PATCH", path, body, options);
  }

  delete(path, options) {
    return this.request("DELETE", path, undefined, options);
  }
}
