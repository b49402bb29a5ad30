// The jobs this tab submitted, per endpoint (there is no list-jobs API): ids and their last
// known status, kept in sessionStorage. Outputs are not kept (images are large); a job's
// result is fetched again from /status when asked for, while its retention lasts.

const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);
const MAX_JOBS = 25;
export const JOBS_EVENT = "podium:jobs";

export function isFinal(status) {
  return FINAL.has(status);
}

const storageKey = (endpointId) => `podium.jobs.${endpointId}`;

export function recentJobs(endpointId) {
  try {
    return JSON.parse(sessionStorage.getItem(storageKey(endpointId))) || [];
  } catch {
    return [];
  }
}

function save(endpointId, jobs) {
  sessionStorage.setItem(storageKey(endpointId), JSON.stringify(jobs.slice(0, MAX_JOBS)));
  window.dispatchEvent(new CustomEvent(JOBS_EVENT, { detail: endpointId }));
}

export function rememberJob(endpointId, id, status) {
  const jobs = recentJobs(endpointId).filter((j) => j.id !== id);
  jobs.unshift({ id, status, submittedAt: Date.now() / 1000 });
  save(endpointId, jobs);
}

/** Record the latest status object of a remembered job (or `gone` once it is 404). */
export function updateJob(endpointId, id, status = null, gone = false) {
  const jobs = recentJobs(endpointId);
  const job = jobs.find((j) => j.id === id);
  if (!job) return;
  const before = JSON.stringify(job);
  if (gone) job.gone = true;
  if (status) {
    job.status = status.status;
    job.delayTime = status.delayTime ?? null;
    job.executionTime = status.executionTime ?? null;
    job.error = status.error ?? null;
  }
  if (JSON.stringify(job) !== before) save(endpointId, jobs); // unchanged: no re-render
}
