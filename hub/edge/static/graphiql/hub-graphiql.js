/* The hub's GraphiQL (hub/edge/graphiql.py): settings from the page's #hub-graphiql-config;
 * requests to the hub's own /graphql only; what GraphiQL stores goes to this tab's
 * sessionStorage, never to localStorage. */
(function () {
  'use strict';

  var config = JSON.parse(document.getElementById('hub-graphiql-config').textContent);

  // GraphiQL's storage (it prefixes its keys with "graphiql:"): the tab's sessionStorage, so
  // nothing of it, a pasted token least of all, outlives the tab. Where headers are not to be
  // kept (config.persistHeaders false), they are taken out of the history GraphiQL stores too:
  // it stores each run's headers there whatever shouldPersistHeaders says.
  var PREFIX = 'graphiql:';
  var HISTORY = ['graphiql:queries', 'graphiql:favorites'];
  function withoutHeaders(value) {
    var stored;
    try {
      stored = JSON.parse(value);
    } catch (e) {
      return null;  // not what GraphiQL writes: keep nothing
    }
    Object.keys(stored || {}).forEach(function (list) {
      if (Array.isArray(stored[list])) {
        stored[list].forEach(function (item) { if (item) delete item.headers; });
      }
    });
    return JSON.stringify(stored);
  }
  function ownKeys() {
    var keys = [];
    for (var i = 0; i < window.sessionStorage.length; i++) {
      var key = window.sessionStorage.key(i);
      if (key !== null && key.indexOf(PREFIX) === 0) keys.push(key);
    }
    return keys;
  }
  var storage = {
    getItem: function (key) { return window.sessionStorage.getItem(key); },
    setItem: function (key, value) {
      if (!config.persistHeaders && HISTORY.indexOf(key) >= 0) value = withoutHeaders(value);
      if (value === null) window.sessionStorage.removeItem(key);
      else window.sessionStorage.setItem(key, value);
    },
    removeItem: function (key) { window.sessionStorage.removeItem(key); },
    clear: function () { ownKeys().forEach(function (key) { window.sessionStorage.removeItem(key); }); },
    get length() { return ownKeys().length; }
  };

  function answer(message) {
    return Promise.resolve({ data: null, errors: [{ message: message }] });
  }

  // The hub answers errors as JSON too (401, 403, 429...): show them as they are.
  function makeFetcher() {
    return function fetcher(params, options) {
      var extra = (options && options.headers) || {};
      var headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
      Object.keys(extra).forEach(function (name) { headers[name] = String(extra[name]); });
      var auth = Object.keys(headers).filter(function (n) { return n.toLowerCase() === 'authorization'; });
      if (auth.length === 0 || headers[auth[0]] === config.tokenPlaceholder) {
        return answer('No token yet: put one in the Authorization header (Headers, below), ' +
                      'as "Bearer <token>". In a terminal: hub token --user analyst1 ' +
                      '--agency CA0990000 --roles analyst');
      }
      return window.fetch(config.endpoint, {
        method: 'POST',
        headers: headers,
        body: JSON.stringify(params),
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error'
      }).then(function (response) {
        return response.text().then(function (text) {
          try {
            return JSON.parse(text);
          } catch (e) {
            return { errors: [{ message: 'HTTP ' + response.status + ': ' + text.slice(0, 500) }] };
          }
        });
      });
    };
  }

  // GraphiQL fetches the schema again when its fetcher changes: give it a new one when the
  // Authorization header does, so the docs and completion follow the token pasted in.
  var authorization = null;
  function authorizationOf(text) {
    try {
      var parsed = JSON.parse(text || '{}');
      for (var name in parsed) {
        if (name.toLowerCase() === 'authorization') return String(parsed[name]);
      }
    } catch (e) {
      return authorization;  // half-typed: no change yet
    }
    return null;
  }

  var root = window.ReactDOM.createRoot(document.getElementById('graphiql'));
  var timer = null;
  var props = {
    fetcher: makeFetcher(),
    defaultQuery: config.defaultQuery,
    defaultHeaders: config.defaultHeaders,
    defaultEditorToolsVisibility: 'headers',
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: config.persistHeaders,
    storage: storage,
    onEditHeaders: function (text) {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var now = authorizationOf(text);
        if (now !== authorization) {
          authorization = now;
          props = Object.assign({}, props, { fetcher: makeFetcher() });
          render();
        }
      }, 300);
    }
  };
  function render() {
    root.render(window.React.createElement(window.GraphiQL, props));
  }
  authorization = authorizationOf(config.defaultHeaders);
  render();
})();
