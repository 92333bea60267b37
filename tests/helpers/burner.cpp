// SPDX-License-Identifier: Apache-2.0
// A workload with a known footprint for the privileged tests:
//   aurum_test_burner --threads N --burn-ms MS --mem-mb MB [--nap-ms NAP] [--tag T]
// touches MB of anonymous memory, burns MS of CPU in each of N threads (busy loops on
// CLOCK_THREAD_CPUTIME_ID, so each thread really consumes MS of CPU whatever the contention),
// prints "done" and then sleeps until killed, so that its /proc figures can be read at rest.
// With --nap-ms the threads stay: each then sleeps 1..NAP ms at a time, for ever, so that the
// process has N threads woken by timers all the time.
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

static double thread_cpu_ms()
{
	timespec ts{};
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
	int threads = 1, burn_ms = 1000, mem_mb = 0, nap_ms = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		std::string a = argv[i];
		if (a == "--threads") threads = std::atoi(argv[i + 1]);
		else if (a == "--burn-ms") burn_ms = std::atoi(argv[i + 1]);
		else if (a == "--mem-mb") mem_mb = std::atoi(argv[i + 1]);
		else if (a == "--nap-ms") nap_ms = std::atoi(argv[i + 1]);
	}
	std::vector<char> mem(static_cast<size_t>(mem_mb) << 20);
	for (size_t i = 0; i < mem.size(); i += 4096)
		mem[i] = 1;
	std::vector<std::thread> ts;
	std::atomic<int> burnt{0};
	for (int t = 0; t < threads; t++)
		ts.emplace_back([burn_ms, nap_ms, t, &burnt] {
			volatile unsigned long x = 0;
			double start = thread_cpu_ms();
			while (thread_cpu_ms() - start < burn_ms)
				for (int i = 0; i < 10000; i++)
					x = x + static_cast<unsigned long>(i);
			burnt++;
			for (long n = t; nap_ms > 0; n++) {
				timespec nap{0, (1 + n % nap_ms) * 1000000L};
				nanosleep(&nap, nullptr);
			}
		});
	if (nap_ms > 0) {
		for (auto &t : ts)
			t.detach();
		while (burnt < threads)
			usleep(1000);
	}
	for (auto &t : ts)
		if (t.joinable())
			t.join();
	std::printf("done\n");
	std::fflush(stdout);
	for (;;)
		pause();
}
