"""upper-py: an example agent in Python. Stateless (mode "invoke"): a run's string input
comes back upper-cased; any other input fails with code "invalid_input"."""
import agenthost_sdk


class Upper(agenthost_sdk.Agent):
    def run(self, run_id, input):
        if not isinstance(input, str):
            self.fail("invalid_input", "input must be a JSON string")
            return None
        return input.upper()


if __name__ == "__main__":
    agenthost_sdk.run(Upper)
