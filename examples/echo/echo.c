/* echo: an example agent in C. A run streams its input back word by word, one event
 * {"word": "..."} per word, then ends with the whole input as its output. */
#include <agent.h>

#include <stdbool.h>
#include <string.h>

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Emits one event per run of non-space bytes. Splitting on ASCII spaces keeps every word
 * valid UTF-8. Stops early if the host is gone. */
static void emit_words(struct agent *agent, const char *run, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t start;

		while (i < len && is_space(s[i]))
			i++;
		start = i;
		while (i < len && !is_space(s[i]))
			i++;
		if (i > start &&
		    agent_emit(agent, run, json_pack("{s:s%}", "word", s + start, i - start)) < 0)
			return;
	}
}

static void echo_run(struct agent *agent, const char *run, json_t *input, void *user)
{
	(void)user;
	/* Only a string has words; any other input is echoed whole, without events. */
	if (json_is_string(input))
		emit_words(agent, run, json_string_value(input), json_string_length(input));
	agent_done(agent, run, json_incref(input));
}

int main(int argc, char **argv)
{
	const struct agent_callbacks callbacks = {.run = echo_run};

	return agent_main(argc, argv, &callbacks, NULL);
}
