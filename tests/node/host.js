// The imo:incremental imports, supplied by a JavaScript host.
import { createHash } from "node:crypto";
export const events = [];

export const credentials = {
  // No registry in the test needs credentials.
  lookup(_registry, _role) {
    return undefined;
  },
};

export const progress = {
  report(event) {
    events.push(event);
  },
};

// Digests in native code, as the imo binary supplies them.
class Hasher {
  constructor(algorithm) {
    this.hash = createHash(algorithm);
  }
  update(data) {
    this.hash.update(data);
  }
  digest() {
    return new Uint8Array(this.hash.copy().digest());
  }
}

export const hashing = { Hasher };

// Temporary files the component writes: this host keeps none of its own
// to clean up, and tags them with its process id.
export const cleanup = {
  begun(_path) {},
  ended(_path) {},
  owner() {
    return process.pid;
  },
};

// Workers: this host runs none, so the component does all of its work
// itself (`start` answers none; no job is ever made).
class Job {
  join() {
    throw new Error("no workers in this host");
  }
}

export const workers = {
  Job,
  start(_work, _input) {
    return undefined;
  },
};
