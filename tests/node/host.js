// The imo:incremental imports, supplied by a JavaScript host.
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
