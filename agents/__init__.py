"""lanesim's agents: tabular value iteration, a CNN DQN, and adapters for SB3 / RLlib."""
