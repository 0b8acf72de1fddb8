"""py_test_agent: an agent built on the Python SDK for test_sdk.py. input["op"] picks what a
run does, so that one script covers every SDK call and every way a run can end."""
import time

import agenthost_sdk


class TestAgent(agenthost_sdk.Agent):
    def create(self, hello):
        if self.config.get("FAIL_CREATE"):
            raise RuntimeError("asked to fail")
        self.cancels = 0

    def cancel(self, run_id):
        self.cancels += 1

    def run(self, run_id, input):
        op = input.get("op") if isinstance(input, dict) else None
        return getattr(self, "op_" + str(op), self.op_default)(input)

    def op_default(self, input):
        self.emit({"got": input})
        return input  # the return value is the output

    def op_kv(self, input):
        kv, out = self.kv, {}
        kv["a"] = 1
        kv["b"] = {"x": [1]}
        kv["ab"] = None
        out["get_b"] = kv["b"]
        out["get_ab"] = kv.get("ab", "default")
        out["get_missing"] = kv.get("zz", "default")
        try:
            kv["zz"]
        except KeyError:
            out["missing_raises"] = True
        out["contains_a"] = "a" in kv
        out["list_all"] = kv.list()
        out["list_a"] = kv.list("a")
        out["len"] = len(kv)
        del kv["a"]
        try:
            del kv["a"]
        except KeyError:
            out["del_again_raises"] = True
        out["delete_missing"] = kv.delete("a")
        try:
            kv["refuse"] = True
        except agenthost_sdk.KVError as e:
            out["refused"] = [e.code, e.message]
        try:
            kv[""] = 1
        except TypeError:
            out["empty_key_raises"] = True
        self.done(out)

    def op_kv_cancel(self, input):
        self.kv.get("k")
        self.log("info", "cancelled=%s cancels=%d" % (self.cancelled, self.cancels))
        # Returning after a cancel ends the run as "cancelled".

    def op_spin(self, input):
        self.emit("spinning")
        while not self.cancelled:
            time.sleep(0.001)

    def op_spin_count(self, input):
        # Polls from its first step on (no emit first): a cancel that came with the run
        # frame must be seen at once; logs how often the cancel hook ran.
        while not self.cancelled:
            time.sleep(0.001)
        self.log("info", "cancels=%d" % self.cancels)

    def op_long(self, input):
        # A long input and a long KV value (both over the SDK's 64 KiB read size).
        value = self.kv.get("big")
        return {"input_len": len(input["text"]), "value_len": len(value),
                "value_ok": value == "v" * len(value)}

    def op_raise(self, input):
        raise ValueError("bad input")

    def op_fail(self, input):
        self.fail("custom", "it failed")

    def op_nokv(self, input):
        try:
            self.kv["a"]
        except agenthost_sdk.KVError as e:
            return e.code

    def op_big(self, input):
        try:
            self.emit("x" * 1000)
        except ValueError as e:
            return str(e)

    def op_nan(self, input):
        try:
            self.emit(float("nan"))
        except ValueError:
            return "refused"

    def op_log(self, input):
        self.log("warn", "n=42")
        self.done(None)
        try:
            self.emit(1)
        except RuntimeError:
            return "ignored"  # the run has ended; a return value is dropped


if __name__ == "__main__":
    agenthost_sdk.run(TestAgent)
