// Access control of a real cosetd, tried as an attacker on the same node would: a second uid on
// the Unix sockets (access_probe run under setpriv), a TCP client holding another user's region
// token, and TCP clients with and without certificates against TLS and mutual TLS.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "client/coset_client.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/server/shm_test_util.h"

namespace coset {
namespace {

constexpr int kOtherUid = 65534;  // nobody / nogroup

// What a client reports when the TLS handshake fails: gRPC keeps retrying the connection until
// the call's deadline (the probe waits for a reachable daemon), or gives up at once.
bool NoConnection(const std::string& probe_output) {
  return probe_output == "UNAVAILABLE" || probe_output == "DEADLINE_EXCEEDED";
}

// Runs `command` through the shell; its stdout (trimmed of the last newline).
std::string Shell(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class AccessControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cosetd-access-XXXXXX";
    dir_ = mkdtemp(tmpl);
    // The probe runs as another uid, which cannot read Bazel's runfiles under /root: a copy here.
    probe_ = dir_ + "/access_probe";
    std::filesystem::copy_file(std::string(std::getenv("TEST_SRCDIR")) + "/coset/tests/integration/access_probe",
                               probe_);
    chmod(probe_.c_str(), 0755);
    chmod(dir_.c_str(), 0755);
  }
  void TearDown() override {
    client_.reset();
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartDaemon(const std::vector<std::string>& extra = {}) {
    daemon_ = std::make_unique<Daemon>(dir_);
    ASSERT_TRUE(daemon_->Start(extra)) << "cosetd did not start";
    Client::Options o;
    o.address = daemon_->unix_address();
    client_ = *Client::Connect(o);
  }
  // access_probe's output when run as the other uid (its own primary group, no others).
  std::string AsOtherUid(const std::string& args) {
    return Shell("setpriv --reuid=" + std::to_string(kOtherUid) + " --regid=" + std::to_string(kOtherUid) +
                 " --clear-groups -- " + probe_ + " " + args + " 2>/dev/null");
  }
  std::string AsMe(const std::string& args) { return Shell(probe_ + " " + args + " 2>/dev/null"); }
  std::string Blob() {
    std::vector<float> x(8 * 64, 0.5f);
    return *client_->Encode(x.data(), {8, 64}, CodecParams{});
  }
  bool CanRunAsAnotherUid() const { return geteuid() == 0 && std::system("command -v setpriv >/dev/null") == 0; }

  std::string dir_, probe_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<Client> client_;
};

TEST_F(AccessControlTest, AnotherUidIsRefusedEvenWhenTheSocketFileIsOpenToAll) {
  if (!CanRunAsAnotherUid()) GTEST_SKIP() << "needs root and setpriv to run a client as another uid";
  StartDaemon();
  ASSERT_TRUE(client_->PutTensor("mine/w", Blob(), false).ok());
  // A careless umask or chmod: file modes would let anyone connect. The peer check still holds.
  chmod(daemon_->socket_path().c_str(), 0666);
  const std::string address = daemon_->unix_address();
  EXPECT_EQ(AsOtherUid(address + " list"), "PERMISSION_DENIED");
  EXPECT_EQ(AsOtherUid(address + " get mine/w"), "PERMISSION_DENIED");
  EXPECT_EQ(AsOtherUid(address + " delete mine/w"), "PERMISSION_DENIED");
  EXPECT_EQ(AsOtherUid(address + " put mine/w"), "PERMISSION_DENIED");
  // The owner's tensor is untouched and the daemon serves its own uid as before.
  auto list = client_->ListTensors();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "mine/w");
  EXPECT_TRUE(client_->GetTensor("mine/w").ok());
}

TEST_F(AccessControlTest, GroupMembersAreAdmittedAndOwnOnlyWhatTheyMade) {
  if (!CanRunAsAnotherUid()) GTEST_SKIP() << "needs root and setpriv to run a client as another uid";
  StartDaemon({"--allow-group", std::to_string(kOtherUid)});
  // The sockets are group-accessible for the allowed group, and owner-only otherwise.
  struct stat st {};
  ASSERT_EQ(stat(daemon_->socket_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, static_cast<gid_t>(kOtherUid));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ASSERT_EQ(stat((daemon_->socket_path() + ".shm").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  const std::string address = daemon_->unix_address();
  ASSERT_TRUE(client_->PutTensor("root/w", Blob(), false).ok());
  EXPECT_EQ(AsOtherUid(address + " put nobody/w"), "OK");
  EXPECT_EQ(AsOtherUid(address + " list"), "OK\nnobody/w");  // its own tensors only
  EXPECT_EQ(AsOtherUid(address + " get root/w"), "PERMISSION_DENIED");
  EXPECT_EQ(AsOtherUid(address + " delete root/w"), "PERMISSION_DENIED");
  EXPECT_EQ(AsOtherUid(address + " put root/w"), "PERMISSION_DENIED");  // no overwriting either
  EXPECT_EQ(client_->GetTensor("nobody/w").status().code(), absl::StatusCode::kPermissionDenied);
  auto list = client_->ListTensors();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "root/w");
  EXPECT_EQ(AsOtherUid(address + " get nobody/w"), "OK");
  EXPECT_EQ(AsOtherUid(address + " delete nobody/w"), "OK");
}

TEST_F(AccessControlTest, ARegionTokenIsNoKeyForAnotherPrincipal) {
  StartDaemon(CanRunAsAnotherUid() ? std::vector<std::string>{"--allow-group", std::to_string(kOtherUid)}
                                   : std::vector<std::string>{});
  RawSideSocket side(daemon_->socket_path() + ".shm");
  ASSERT_TRUE(side.connected());
  const int memfd = Memfd("coset_access_region", 4096);
  const ShmReply reply = side.Register({memfd}, 4096);
  close(memfd);
  ASSERT_EQ(reply.status, 0u) << reply.message;
  const std::string token(reply.token);
  // The owner (this uid, on the Unix socket) may use it; a TCP client with the token may not.
  EXPECT_EQ(AsMe(daemon_->unix_address() + " encode-region " + token), "OK");
  EXPECT_EQ(AsMe(daemon_->tcp_address() + " encode-region " + token), "PERMISSION_DENIED");
  if (CanRunAsAnotherUid()) {
    EXPECT_EQ(AsOtherUid(daemon_->unix_address() + " encode-region " + token), "PERMISSION_DENIED");
  }
}

// Certificates made for the test with openssl: a CA, the daemon's certificate for 127.0.0.1, client
// certificates for alice and bob from that CA, and one for mallory from a CA the daemon does not trust.
class TlsTest : public AccessControlTest {
 protected:
  void SetUp() override {
    AccessControlTest::SetUp();
    const std::string d = dir_ + "/";
    std::ofstream(d + "san.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    const std::string key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    std::string script = "set -e; cd " + dir_ + "; exec 2>openssl.log; ";
    for (const char* ca : {"ca", "rogue"}) {
      script += "openssl req -x509 " + key.substr(12) + "-keyout " + ca + ".key -out " + ca +
                ".pem -days 2 -subj /CN=" + ca + "; ";
    }
    auto sign = [&](const std::string& name, const std::string& ca, const std::string& ext) {
      return key + "-keyout " + name + ".key -out " + name + ".csr -subj /CN=" + name + "; openssl x509 -req -in " +
             name + ".csr -CA " + ca + ".pem -CAkey " + ca + ".key -CAcreateserial -out " + name + ".pem -days 2" +
             ext + "; ";
    };
    script += sign("server", "ca", " -extfile san.ext") + sign("alice", "ca", "") + sign("bob", "ca", "") +
              sign("mallory", "rogue", "");
    ASSERT_EQ(std::system(script.c_str()), 0) << Shell("cat " + d + "openssl.log");
  }
  std::string Tls(const std::string& who) const {
    const std::string d = dir_ + "/";
    return "--tls-ca " + d + "ca.pem" +
           (who.empty() ? "" : " --tls-cert " + d + who + ".pem --tls-key " + d + who + ".key");
  }
};

TEST_F(TlsTest, MutualTlsAdmitsOnlyCertifiedClientsAndTheirCertificateOwnsTheirTensors) {
  const std::string d = dir_ + "/";
  StartDaemon({"--tls-cert", d + "server.pem", "--tls-key", d + "server.key", "--tls-client-ca", d + "ca.pem"});
  const std::string tcp = daemon_->tcp_address();
  EXPECT_EQ(AsMe(tcp + " " + Tls("alice") + " put alice/w"), "OK");
  EXPECT_EQ(AsMe(tcp + " " + Tls("alice") + " list"), "OK\nalice/w");
  EXPECT_EQ(AsMe(tcp + " " + Tls("bob") + " get alice/w"), "PERMISSION_DENIED");
  EXPECT_EQ(AsMe(tcp + " " + Tls("bob") + " list"), "OK");
  // No certificate, a certificate from an untrusted CA, or plaintext: no connection at all.
  EXPECT_TRUE(NoConnection(AsMe(tcp + " " + Tls("") + " list")));
  EXPECT_TRUE(NoConnection(
      AsMe(tcp + " --tls-ca " + d + "ca.pem --tls-cert " + d + "mallory.pem --tls-key " + d + "mallory.key list")));
  EXPECT_TRUE(NoConnection(AsMe(tcp + " list")));
  // The Unix socket's principal (this uid) is not alice either.
  EXPECT_EQ(client_->GetTensor("alice/w").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(TlsTest, CosetctlTakesTheTlsFiles) {
  const std::string d = dir_ + "/";
  StartDaemon({"--tls-cert", d + "server.pem", "--tls-key", d + "server.key", "--tls-client-ca", d + "ca.pem"});
  const std::string cosetctl = std::string(std::getenv("TEST_SRCDIR")) + "/coset/client/cosetctl";
  const std::string daemon = " --daemon " + daemon_->tcp_address();
  // The health line and the exit status. stderr is dropped (gRPC logs failed handshakes there);
  // a client that cannot connect waits for the daemon, so `timeout` ends it.
  auto run = [&](const std::string& flags) {
    return Shell("timeout 5 " + cosetctl + daemon + flags + " health 2>/dev/null; echo $?");
  };
  EXPECT_EQ(run(" --tls-ca " + d + "ca.pem --tls-cert " + d + "alice.pem --tls-key " + d + "alice.key"),
            daemon_->tcp_address() + ": SERVING\n0");
  const std::string plaintext = run("");  // plaintext to a mutual-TLS port
  EXPECT_NE(plaintext.back(), '0') << plaintext;
  const std::string no_certificate = run(" --tls-ca " + d + "ca.pem");
  EXPECT_NE(no_certificate.back(), '0') << no_certificate;
}

TEST_F(TlsTest, ServerTlsEncryptsWithoutIdentifyingClients) {
  const std::string d = dir_ + "/";
  StartDaemon({"--tls-cert", d + "server.pem", "--tls-key", d + "server.key"});
  const std::string tcp = daemon_->tcp_address();
  EXPECT_EQ(AsMe(tcp + " " + Tls("") + " put shared/w"), "OK");
  EXPECT_EQ(AsMe(tcp + " " + Tls("") + " list"), "OK\nshared/w");
  EXPECT_TRUE(NoConnection(AsMe(tcp + " list")));  // plaintext to a TLS port
  // A client that does not trust the daemon's CA refuses it.
  EXPECT_TRUE(NoConnection(AsMe(tcp + " --tls-ca " + d + "rogue.pem list")));
}

}  // namespace
}  // namespace coset
