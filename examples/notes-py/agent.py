"""notes-py: an example session agent in Python, a small notebook kept in the session's
key-value state. Input {"cmd": "add", "text": T} stores a note; {"cmd": "list"} streams
every note as an event and returns how many there are; {"cmd": "search", "q": Q} streams
the notes that contain Q (case-insensitive) and returns them. Anything else fails the run
with code "invalid_input".

State: "note:<n>" holds the text of note n (1, 2, 3, ...), "next" the number the next note
gets. Notes are never renumbered, so an id stays valid across hibernation and restarts."""
import agenthost_sdk

MAX_TEXT = 65536   # characters of one note; a KV value may be up to 1 MiB of JSON
MAX_QUERY = 1024   # characters of a search query
NOTE_PREFIX = "note:"
COMMANDS = ("add", "list", "search")


class BadInput(Exception):
    """The run's input is not one of the commands: the run fails with invalid_input."""


class BadState(Exception):
    """A key this agent owns holds something it did not write (a client changed it
    through /v1/sessions/{id}/state): the run fails with bad_state."""


def _string_field(input, name, limit):
    value = input.get(name)
    if not isinstance(value, str) or not value:
        raise BadInput('"%s" must be a non-empty string' % name)
    if len(value) > limit:
        raise BadInput('"%s" is longer than %d characters' % (name, limit))
    return value


def parse(input):
    """Returns (cmd, argument) from a run's input, or raises BadInput saying why not."""
    if not isinstance(input, dict):
        raise BadInput('input must be an object such as {"cmd": "list"}')
    cmd = input.get("cmd")
    if cmd not in COMMANDS:
        raise BadInput('"cmd" must be one of %s, not %s'
                       % (", ".join('"%s"' % c for c in COMMANDS), _short(cmd)))
    allowed = {"add": {"cmd", "text"}, "list": {"cmd"}, "search": {"cmd", "q"}}[cmd]
    extra = sorted(set(input) - allowed)
    if extra:
        raise BadInput('"%s" takes no field "%s"' % (cmd, extra[0]))
    if cmd == "add":
        return cmd, _string_field(input, "text", MAX_TEXT)
    if cmd == "search":
        return cmd, _string_field(input, "q", MAX_QUERY)
    return cmd, None


def _short(value):
    text = repr(value) if not isinstance(value, str) else '"%s"' % value
    return text if len(text) <= 40 else text[:37] + "..."


class Notes(agenthost_sdk.Agent):
    def run(self, run_id, input):
        try:
            cmd, arg = parse(input)
            return getattr(self, "_" + cmd)(arg)
        except BadInput as e:
            self.fail("invalid_input", str(e))
        except BadState as e:
            self.fail("bad_state", str(e))
        return None

    def _add(self, text):
        n = self.kv.get("next", 1)
        if type(n) is not int or n < 1:
            raise BadState('state key "next" must be an integer >= 1, not %s' % _short(n))
        # Count first: a crash between the two writes leaves a gap, never an overwrite.
        self.kv["next"] = n + 1
        self.kv[NOTE_PREFIX + str(n)] = text
        self.emit({"id": n, "text": text})
        return {"id": n}

    def _notes(self):
        """Every note as (id, text), oldest first. Keys come in byte order ("note:10"
        before "note:2"), so they are sorted by number."""
        ids = []
        for key in self.kv.list(NOTE_PREFIX):
            suffix = key[len(NOTE_PREFIX):]
            if suffix.isdigit() and suffix.isascii():
                ids.append(int(suffix))
        for n in sorted(ids):
            if self.cancelled:
                return
            text = self.kv.get(NOTE_PREFIX + str(n))
            if isinstance(text, str):  # skip a note deleted meanwhile or not written by us
                yield n, text

    def _list(self, _arg):
        count = 0
        for n, text in self._notes():
            self.emit({"id": n, "text": text})
            count += 1
        return {"count": count}

    def _search(self, q):
        needle = q.casefold()
        matches = []
        for n, text in self._notes():
            if needle in text.casefold():
                self.emit({"id": n, "text": text})
                matches.append({"id": n, "text": text})
        return {"count": len(matches), "matches": matches}


if __name__ == "__main__":
    agenthost_sdk.run(Notes)
