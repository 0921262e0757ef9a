"""The agent: the episode loop, the policy interface and its policies (scripted, llama.cpp,
replay), the prompt, privacy of typed secrets and element descriptors. Imports only the core."""
