// Brings a broker's principals and ACLs in line with a specification read from standard input,
// using Kafka's own Admin client (run by deploy/kafka.sh as a single-file program:
// java -cp '<kafka libs>/*' Provision.java <bootstrap> <admin user> <admin password file>).
//
// The specification, one statement a line (written by `python -m shared.kafka.access spec`):
//   user <name> <password file>                      a SCRAM-SHA-512 credential (created or reset)
//   acl <principal> <resource type> <pattern> <name> <operation>
// ACLs of the named users that the specification no longer lists are removed, so the broker
// grants exactly what the specification says. Prints one line per change.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Provision {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Provision <bootstrap> <admin user> <admin password file> < spec");
            System.exit(2);
        }
        String password = Files.readString(Path.of(args[2])).strip();
        Properties config = new Properties();
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        String protocol = System.getenv().getOrDefault("POLICYTRACK_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT");
        config.put("security.protocol", protocol);
        config.put("sasl.mechanism", "PLAIN");
        config.put("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
            + args[1] + "\" password=\"" + password + "\";");
        String cafile = System.getenv("POLICYTRACK_KAFKA_SSL_CAFILE");
        if (cafile != null && !cafile.isEmpty()) {
            config.put("ssl.truststore.type", "PEM");
            config.put("ssl.truststore.location", cafile);
        }
        config.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "30000");

        List<UserScramCredentialAlteration> users = new ArrayList<>();
        Set<String> principals = new HashSet<>();
        Set<AclBinding> wanted = new HashSet<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {
            String[] word = line.strip().split("\\s+");
            if (word.length == 0 || word[0].isEmpty() || word[0].startsWith("#")) continue;
            if (word[0].equals("user") && word.length == 3) {
                String secret = Files.readString(Path.of(word[2])).strip();
                users.add(new UserScramCredentialUpsertion(word[1],
                    new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), secret));
                principals.add("User:" + word[1]);
            } else if (word[0].equals("acl") && word.length == 6) {
                wanted.add(new AclBinding(
                    new ResourcePattern(ResourceType.fromString(word[2]), word[4], PatternType.fromString(word[3])),
                    new AccessControlEntry(word[1], "*", AclOperation.fromString(word[5]), AclPermissionType.ALLOW)));
            } else {
                throw new IllegalArgumentException("cannot read the specification line: " + line);
            }
        }
        try (Admin admin = Admin.create(config)) {
            if (!users.isEmpty()) admin.alterUserScramCredentials(users).all().get();
            Set<AclBinding> present = new HashSet<>(admin.describeAcls(AclBindingFilter.ANY).values().get());
            List<AclBinding> missing = new ArrayList<>();
            for (AclBinding binding : wanted) if (!present.contains(binding)) missing.add(binding);
            List<AclBindingFilter> stale = new ArrayList<>();
            for (AclBinding binding : present) {
                if (principals.contains(binding.entry().principal()) && !wanted.contains(binding)) {
                    stale.add(binding.toFilter());
                }
            }
            if (!missing.isEmpty()) admin.createAcls(missing).all().get();
            if (!stale.isEmpty()) admin.deleteAcls(stale).all().get();
            System.out.println("provisioned " + principals.size() + " principals: " + missing.size()
                + " ACLs added, " + stale.size() + " removed, " + wanted.size() + " in force");
        }
    }
}
